"""The one image decoder of the suite (torch-free): any image Pillow reads, into RGB the way a user expects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 16          # pixels; smaller images carry too little content to stylise
MAX_ASPECT = 4.0       # long/short side; beyond it the short-side-512 rule makes absurd latents


class ImageLoadError(ValueError):
    """An input image that cannot be used; the message names the file and why."""


def decode_rgb(path: str | Path) -> Image.Image:
    """Decode fully (so truncation is caught here), apply EXIF orientation, normalise to 8-bit RGB."""
    with Image.open(path) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
    return to_rgb(upright)


def load_rgb(path: str | Path) -> Image.Image:
    """:func:`decode_rgb`, with unreadable, too small or too elongated images reported as ImageLoadError."""
    path = Path(path)
    try:
        rgb = decode_rgb(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"{path}: not a readable image ({error})") from error
    if min(rgb.size) < MIN_SIDE:
        raise ImageLoadError(f"{path}: {rgb.width}×{rgb.height} px is too small (the short side must be ≥ {MIN_SIDE} px)")
    if max(rgb.size) / min(rgb.size) > MAX_ASPECT:
        raise ImageLoadError(f"{path}: aspect ratio {max(rgb.size) / min(rgb.size):.1f} exceeds {MAX_ASPECT}; crop it first")
    return rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: 16-bit/32-bit/float grey rescaled, alpha composited on white."""
    if image.mode.startswith("I") or image.mode == "F":
        return Image.fromarray(_wide_to_uint8(np.asarray(image)), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_to_uint8(values: np.ndarray) -> np.ndarray:
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    if is_float and values.size and values.max() <= 1.0 and values.min() >= 0.0:
        full_scale = 1.0
    else:
        full_scale = 65535.0 if values.size and values.max() > 255 else 255.0
    return np.clip(np.rint(values / full_scale * 255.0), 0, 255).astype(np.uint8)
