"""The one image decoder of the suite (torch-free): any image Pillow reads, into RGB the way a user expects."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 16          # pixels; smaller images carry too little content to stylise
MAX_ASPECT = 4.0       # long/short side; beyond it the short-side-512 rule makes absurd latents


class ImageLoadError(ValueError):
    """An input image that cannot be used; the message names the file and why."""


class FileBytes(io.BytesIO):
    """A file's bytes held in memory, named like the file in Pillow's messages (which print ``repr(fp)``)."""

    def __init__(self, data: bytes, path: str | Path):
        super().__init__(data)
        self.path = str(path)

    def __repr__(self) -> str:
        return repr(self.path)


def decode_rgb(path: str | Path | FileBytes) -> Image.Image:
    """Decode fully (so truncation is caught here), apply EXIF orientation, normalise to 8-bit RGB."""
    with Image.open(path) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
    return to_rgb(upright)


def read_image_file(path: str | Path) -> bytes:
    """The file's bytes, a failure to read them reported as ImageLoadError (as :func:`load_rgb` does)."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ImageLoadError(f"{path}: not a readable image ({error})") from error


def load_rgb(path: str | Path, data: bytes | None = None) -> Image.Image:
    """:func:`decode_rgb`, with unreadable, too small or too elongated images reported as ImageLoadError.
    ``data``: the file's bytes, read elsewhere (e.g. by the driver of a cluster); ``path`` then only names it."""
    path = Path(path)
    try:
        rgb = decode_rgb(path if data is None else FileBytes(data, path))
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


def centre_crop(image: Image.Image, aspect: float = 1.0) -> Image.Image:
    """The largest centred crop of ``image`` with width/height ≈ ``aspect`` (1: the centre square)."""
    w, h = image.size
    if w / h > aspect:
        keep = max(1, round(h * aspect))
        box = ((w - keep) // 2, 0, (w - keep) // 2 + keep, h)
    else:
        keep = max(1, round(w / aspect))
        box = (0, (h - keep) // 2, w, (h - keep) // 2 + keep)
    return image if box == (0, 0, w, h) else image.crop(box)


def square_resized(image: Image.Image, size: int) -> Image.Image:
    """The centre square, Lanczos to ``size``²."""
    square = centre_crop(image)
    if square.size == (size, size):
        return square
    return square.resize((size, size), Image.Resampling.LANCZOS)


def _wide_to_uint8(values: np.ndarray) -> np.ndarray:
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    if is_float and values.size and values.max() <= 1.0 and values.min() >= 0.0:
        full_scale = 1.0
    else:
        full_scale = 65535.0 if values.size and values.max() > 255 else 255.0
    return np.clip(np.rint(values / full_scale * 255.0), 0, 255).astype(np.uint8)
