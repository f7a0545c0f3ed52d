"""sha256 of files and bytes, one implementation for the whole suite (sidecars, manifests, metric ids)."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

_CHUNK = 1 << 22


@lru_cache(maxsize=None)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Streamed sha256, remembered per (path, size, mtime) so multi-GB checkpoints are read once."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256_of(str(resolved), stat.st_size, stat.st_mtime_ns)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
