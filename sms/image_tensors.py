"""Images to and from the VAE's working tensors: working size, resize, quantisation.

The suite's rules are the defaults; ``input_resize="release"`` and ``output_image="release"`` (LoopConfig)
reproduce the release's ``stylize.py`` instead (sms.deviations: ``input_resize``, ``output_image``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

LATENT_FACTOR = 8      # VAE downsampling: working sizes are multiples of 8 pixels
RELEASE_PREVIEW_EVERY = 50   # the release decodes a preview every 50 iterations and saves the last one
RELEASE_PREVIEW_SIDE = 256   # … resized to 256 px on the short side


def working_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Short side → ``short_side`` keeping aspect; both sides rounded to a multiple of 8 pixels."""
    scale = short_side / min(width, height)
    round8 = lambda v: max(LATENT_FACTOR, int(round(v * scale / LATENT_FACTOR)) * LATENT_FACTOR)  # noqa: E731
    return round8(width), round8(height)


def release_working_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The release's rule: (int(w·scale), int(h·scale)), truncated, not rounded to multiples of 8."""
    scale = short_side / min(height, width)
    return int(width * scale), int(height * scale)


def image_to_tensor(image: Image.Image, size: tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], bilinear resize to ``size`` = (W, H); the release resizes without antialiasing."""
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.interpolate(array, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=antialias)


def input_tensor(image: Image.Image, short_side: int, rule: str = "suite") -> torch.Tensor:
    """The VAE's input under the suite's size rule or the release's (spec §1)."""
    if rule == "suite":
        return image_to_tensor(image, working_size(image.width, image.height, short_side))
    if rule == "release":
        return image_to_tensor(image, release_working_size(image.width, image.height, short_side), antialias=False)
    raise ValueError(f"unknown input_resize {rule!r}; use 'suite' or 'release'")


def tensor_to_image(x: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """Clamp to [0, 1], resize back to ``size`` = (W, H), quantise to 8-bit RGB."""
    x = F.interpolate(x.float().clamp(0, 1), size=(size[1], size[0]), mode="bilinear", align_corners=False,
                      antialias=True).clamp(0, 1)
    array = (x[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


def release_saved_image(x: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """The release's saved result from a decode ``x``: 8-bit by truncation, resized to 256 px on the short side
    (sides truncated) and then to ``size``, both with Pillow's default filter for RGB (bicubic)."""
    array = (x[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
    preview = Image.fromarray(array, mode="RGB")
    short = min(preview.size)
    small = preview.resize(tuple(int(side * RELEASE_PREVIEW_SIDE / short) for side in preview.size),
                           Image.Resampling.BICUBIC)
    return small.resize(size, Image.Resampling.BICUBIC)
