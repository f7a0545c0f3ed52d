"""Images to and from the VAE's working tensors: working size, resize, quantisation."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

LATENT_FACTOR = 8      # VAE downsampling: working sizes are multiples of 8 pixels


def working_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Short side → ``short_side`` keeping aspect; both sides rounded to a multiple of 8 pixels."""
    scale = short_side / min(width, height)
    round8 = lambda v: max(LATENT_FACTOR, int(round(v * scale / LATENT_FACTOR)) * LATENT_FACTOR)  # noqa: E731
    return round8(width), round8(height)


def image_to_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], bilinear resize to ``size`` = (W, H)."""
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.interpolate(array, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=True)


def tensor_to_image(x: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """Clamp to [0, 1], resize back to ``size`` = (W, H), quantise to 8-bit RGB."""
    x = F.interpolate(x.float().clamp(0, 1), size=(size[1], size[0]), mode="bilinear", align_corners=False,
                      antialias=True).clamp(0, 1)
    array = (x[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, mode="RGB")
