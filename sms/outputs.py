"""Atomic outputs: a finished image is a PNG plus its JSON sidecar, never a partial file."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

MANIFEST = "manifest.json"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; give the file the mode a plain open() would
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())


def atomic_write_json(path: Path, payload: Any) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_png(path: Path, image: Image.Image) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def output_paths(out_dir: Path, image_id: str) -> tuple[Path, Path]:
    return Path(out_dir) / f"{image_id}.png", Path(out_dir) / f"{image_id}.json"


def is_finished(out_dir: Path, image_id: str, config_digest: str | None = None) -> bool:
    """Both files exist (the sidecar is written last) and, if given, the sidecar's config digest matches."""
    png, sidecar = output_paths(out_dir, image_id)
    if not (png.is_file() and sidecar.is_file()):
        return False
    if config_digest is None:
        return True
    try:
        return json.loads(sidecar.read_text()).get("config_digest") == config_digest
    except (json.JSONDecodeError, OSError):
        return False


def write_manifest(out_dir: Path, records: list[dict[str, Any]]) -> None:
    """``manifest.json`` pairing each output with its content image, prompt and style (read by eval/)."""
    atomic_write_json(Path(out_dir) / MANIFEST, {"records": sorted(records, key=lambda r: r["id"])})
