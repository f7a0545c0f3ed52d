"""Image loading and the resize rules the metrics' definition ids name."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from sms.images import decode_rgb


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> Image.Image:
    return decode_rgb(path)


def load_rgb(path: str | Path) -> Image.Image:
    path = Path(path)
    return _load(str(path), path.stat().st_mtime_ns)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """1×3×H×W float32 in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """torchvision ``Resize(size)`` of a PIL image (StyleID's ArtFID): short side to size, aspect kept,
    bilinear, antialiased as PIL resamples."""
    return TF.resize(image, size, interpolation=InterpolationMode.BILINEAR)


def paired_tensors(
    output: Path, reference: Path, size: int | None, short_side: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and its reference as [0, 1] tensors of one shape.

    short_side=S first resizes each of them by :func:`resize_short_side`. Then size=None: the reference is
    resized (bicubic) to the output's size when they differ; size=S: both are resized (bicubic) to S×S.
    """
    out_img, ref_img = load_rgb(output), load_rgb(reference)
    if short_side is not None:
        out_img, ref_img = resize_short_side(out_img, short_side), resize_short_side(ref_img, short_side)
    if size is not None:
        out_img = out_img.resize((size, size), Image.BICUBIC) if out_img.size != (size, size) else out_img
        target = (size, size)
    else:
        target = out_img.size
    if ref_img.size != target:
        ref_img = ref_img.resize(target, Image.BICUBIC)
    return to_tensor(out_img), to_tensor(ref_img)


def pair_rule(size: int | None, short_side: int | None = None) -> str:
    rule = "content-to-output-bicubic" if size is None else f"both-{size}sq-bicubic"
    return rule if short_side is None else f"short{short_side}-bilinear+{rule}"
