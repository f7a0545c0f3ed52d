"""Thumbnails for the results browser, one per image content: ``<folder>/<sha256[:16]>-<px>.<ext>``.

A thumbnail is named by the hash of the image file it shows, so a rerun reuses every thumbnail whose image
is unchanged and a changed image gets a new one. DVC deletes the report folder before it reruns the report
stage, so each thumbnail is also kept in the suite's cache folder and copied back from there, not redrawn.
"""
from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError, features

from sms.hashing import sha256_file
from sms.images import decode_rgb
from sms.outputs import atomic_path
from sms.paths import cache_dir

FORMAT, SUFFIX = ("WEBP", ".webp") if features.check("webp") else ("JPEG", ".jpg")
DEFAULT_PX = 192   # a grid tile is at most 160 CSS px; a little more keeps it sharp on high-density screens
NAME = re.compile(r"^[0-9a-f]{16}-\d+\.(webp|jpg)$")


def thumbnail_bytes(image: Path, px: int) -> bytes:
    """The image decoded as the suite decodes every image, shrunk to fit ``px``×``px`` (never enlarged)."""
    rgb = decode_rgb(image)
    rgb.thumbnail((px, px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format=FORMAT, quality=80)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    # rename-atomic, without the fsync of sms.outputs.atomic_write_bytes: thousands of small files, and a
    # thumbnail lost to a power cut is simply drawn again
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@dataclass
class Thumbnails:
    """Makes or reuses thumbnails under ``folder``; counts what it did, for the report and the tests."""

    folder: Path
    px: int = DEFAULT_PX
    store: Path | None = field(default_factory=lambda: cache_dir() / "thumbs")
    made: int = 0
    copied: int = 0
    reused: int = 0
    failed: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def __call__(self, image: Path) -> Path | None:
        """The thumbnail of ``image``, or None (and a line in ``failed``) if it cannot be read."""
        try:
            name = f"{sha256_file(image)[:16]}-{self.px}{SUFFIX}"
        except OSError as error:
            self.failed.append(f"{image}: not readable ({error})")
            return None
        target = Path(self.folder) / name
        self.used.add(name)
        if target.is_file():
            self.reused += 1
            return target
        stored = self.store / name if self.store else None
        if stored is not None and stored.is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(stored, tmp)
            self.copied += 1
            return target
        try:
            data = thumbnail_bytes(image, self.px)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            self.used.discard(name)
            self.failed.append(f"{image}: no thumbnail ({type(error).__name__}: {error})")
            return None
        _write(target, data)
        if stored is not None:
            try:
                _write(stored, data)
            except OSError:
                pass  # a read-only cache only costs redrawing next time
        self.made += 1
        return target

    def prune(self) -> int:
        """Delete this folder's thumbnails that no image of this report uses (images removed or changed)."""
        removed = 0
        if Path(self.folder).is_dir():
            for path in Path(self.folder).iterdir():
                if NAME.match(path.name) and path.name not in self.used:
                    path.unlink()
                    removed += 1
        return removed

    def summary(self) -> str:
        return (f"{self.made} thumbnails made, {self.copied} copied from the cache, {self.reused} reused"
                + (f", {len(self.failed)} images unreadable" if self.failed else ""))
