"""Training batches for G_θ: random square crops of a content collection (issue 14).

Every crop is drawn from a generator keyed by (seed, step), so batch ``step`` is the same whether a run went
straight through or resumed; each crop gets its own id (its source image, step and slot), which keys its
t, ε and VAE draws (sms.generator_step.batch_streams). Images are decoded when a crop needs them (a DIV2K
training set does not fit in memory decoded); one whose short side is below the crop size is scaled up
first; with ``short_side`` every image is first resized to it (the scale the generator will be used at).
Unreadable files are left out at construction and listed in ``skipped``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from sms.hashing import sha256_file
from sms.image_tensors import image_to_tensor
from sms.images import ImageLoadError, load_rgb
from sms.results import image_id
from sms.rng import RandomStreams

CROP_STREAM = "generator-crops"


@dataclass
class CropSource:
    """The training images (readable ones, sorted by id) and how each batch's crops are drawn."""

    paths: list[Path]
    crop: int
    seed: int
    short_side: int | None = None    # each image resized to this short side first (None: as it is)
    skipped: dict[str, str] = field(default_factory=dict)   # path → reason

    @classmethod
    def from_paths(cls, paths: Sequence[Path], crop: int, seed: int, short_side: int | None = None) -> "CropSource":
        source = cls([], crop, seed, short_side)
        for path in sorted(map(Path, paths), key=image_id):
            try:
                load_rgb(path)   # refuse it now, not hours into training
            except ImageLoadError as error:
                source.skipped[str(path)] = str(error)
                continue
            source.paths.append(path)
        if not source.paths:
            raise ImageLoadError(f"no readable training image among {len(paths)} file(s)"
                                 + (f"; e.g. {next(iter(source.skipped.items()))}" if source.skipped else ""))
        return source

    def manifest_digest(self) -> str:
        """sha256 over the (id, file sha256) of every training image: which data a generator saw."""
        entries = [[image_id(path), sha256_file(path)] for path in self.paths]
        return hashlib.sha256(json.dumps(entries).encode()).hexdigest()

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, list[str]]:
        """(size, 3, crop, crop) pixels in [0, 1] and the crops' ids, for training step ``step``."""
        generator = RandomStreams(self.seed, CROP_STREAM).generator(step, "crop")
        pixels, ids = [], []
        for slot in range(size):
            index = int(torch.randint(len(self.paths), (1,), generator=generator))
            image = self._scaled(index)
            top = int(torch.randint(image.height - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(image.width - self.crop + 1, (1,), generator=generator))
            crop = image.crop((left, top, left + self.crop, top + self.crop))
            pixels.append(image_to_tensor(crop, (self.crop, self.crop)))
            ids.append(f"{image_id(self.paths[index])}@{step}.{slot}")
        return torch.cat(pixels), ids

    def _scaled(self, index: int) -> Image.Image:
        image = load_rgb(self.paths[index])
        short, wanted = min(image.size), max(self.short_side or 0, self.crop)
        if short == wanted or short > wanted and not self.short_side:
            return image
        scale = wanted / short
        return image.resize((max(wanted, round(image.width * scale)), max(wanted, round(image.height * scale))),
                            Image.Resampling.BICUBIC)
