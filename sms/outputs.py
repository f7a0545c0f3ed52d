"""Atomic outputs: a finished image is a PNG plus its JSON sidecar, never a partial file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

MANIFEST = "manifest.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode())


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
