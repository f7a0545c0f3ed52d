"""Decode any image into 8-bit RGB the same way everywhere, crop, resize and encode it."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_WHITE = (255, 255, 255)


def load_rgb(path: Path) -> Image.Image:
    """Decode fully (so truncation is caught here), apply EXIF orientation, normalise to 8-bit RGB."""
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
    return to_rgb(upright)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: 16-bit/32-bit/float grey rescaled, alpha composited on white."""
    if image.mode.startswith("I") or image.mode == "F":
        return Image.fromarray(_wide_to_uint8(np.asarray(image)), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
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


def centre_crop_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def square_resized(image: Image.Image, size: int) -> Image.Image:
    square = centre_crop_square(image)
    if square.size == (size, size):
        return square
    return square.resize((size, size), Image.Resampling.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    """PNG bytes with no metadata, so equal pixels always give equal files (and sha256)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
