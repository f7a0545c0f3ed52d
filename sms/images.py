"""Reading any image Pillow reads into RGB the way a user expects, and resizing for the VAE."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 16          # pixels; smaller images carry too little content to stylise
MAX_ASPECT = 4.0       # long/short side; beyond it the short-side-512 rule makes absurd latents
LATENT_FACTOR = 8      # VAE downsampling: working sizes are multiples of 8 pixels


class ImageLoadError(ValueError):
    """An input image that cannot be used; the message names the file and why."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open ``path`` as 8-bit RGB: EXIF rotation applied, alpha composited on white, 16-bit scaled."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"{path}: not a readable image ({error})") from error
    rgb = to_rgb(image)
    if min(rgb.size) < MIN_SIDE:
        raise ImageLoadError(f"{path}: {rgb.width}×{rgb.height} px is too small (the short side must be ≥ {MIN_SIDE} px)")
    if max(rgb.size) / min(rgb.size) > MAX_ASPECT:
        raise ImageLoadError(f"{path}: aspect ratio {max(rgb.size) / min(rgb.size):.1f} exceeds {MAX_ASPECT}; crop it first")
    return rgb


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


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
