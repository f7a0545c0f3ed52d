"""The one folder lister of the suite (torch-free): which files under a folder are images, in a stable order."""
from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Image-suffixed files under ``folder`` (recursive, hidden entries skipped), sorted by relative path."""
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and is_image_file(path):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())
