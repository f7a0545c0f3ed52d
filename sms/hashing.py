"""sha256 of files and bytes, one implementation for the whole suite (sidecars, manifests, metric ids).

File hashes are remembered by (path, size, mtime) in memory and in ``<cache>/sha256.json``, so a 4 GB
checkpoint is read once, not once per stage or process; a replaced file has a new size or mtime.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_CHUNK = 1 << 22
_MIN_CACHED_BYTES = 1 << 20   # small files hash faster than the cache is read
_memory: dict[str, str] = {}


def _cache_file() -> Path:
    from sms.paths import cache_dir

    return cache_dir() / "sha256.json"


def _read_cache() -> dict[str, str]:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _remember(key: str, digest: str) -> None:
    from sms.outputs import atomic_write_json

    cache = _read_cache()
    cache[key] = digest
    try:
        atomic_write_json(_cache_file(), cache)
    except OSError:
        pass  # a read-only cache only costs time


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Streamed sha256 of a file (``~`` expanded), cached by (path, size, mtime)."""
    resolved = Path(os.path.expandvars(str(path))).expanduser().resolve()
    stat = resolved.stat()
    key = f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"
    if key in _memory:
        return _memory[key]
    if stat.st_size >= _MIN_CACHED_BYTES:
        digest = _read_cache().get(key)
        if digest is None:
            digest = _sha256_of(resolved)
            _remember(key, digest)
    else:
        digest = _sha256_of(resolved)
    _memory[key] = digest
    return digest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
