"""Shared pieces of the sampling and classic method tests: the astronaut photo as a non-square content file, and
the sample rows of every UNet / ControlNet forward in the process, counted by a global hook (independent of what
the method says it costs)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from PIL import Image

DENOISERS = (UNet2DConditionModel, ControlNetModel)


def astronaut_png(folder: Path, size: tuple[int, int] = (72, 64)) -> Path:
    from skimage import data

    path = Path(folder) / "astronaut.png"
    Image.fromarray(data.astronaut()).resize(size, Image.Resampling.LANCZOS).save(path)
    return path


@contextmanager
def denoiser_rows(types: tuple[type, ...] = DENOISERS) -> Iterator[list[int]]:
    """The batch rows of each forward of a module of ``types`` while the block runs, in call order."""
    rows: list[int] = []

    def hook(module, args, kwargs, output):
        if isinstance(module, types):
            rows.append((args[0] if args else kwargs["sample"]).shape[0])

    handle = torch.nn.modules.module.register_module_forward_hook(hook, with_kwargs=True)
    try:
        yield rows
    finally:
        handle.remove()
