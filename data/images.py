"""Decode any image into 8-bit RGB the same way everywhere, crop and resize it."""
from __future__ import annotations

from PIL import Image

from sms.images import decode_rgb as load_rgb  # noqa: F401  (one decoder for the whole suite)
from sms.images import to_rgb  # noqa: F401


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

