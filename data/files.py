"""Manifests of the data stages: schema names, folder digests, roots; errors the user can fix."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sms.hashing import sha256_bytes

STAGED_SCHEMA = "sms-suite/staged/v1"
PREPARED_SCHEMA = "sms-suite/prepared/v1"


class DataError(Exception):
    """A problem with the user's data or arguments, reported as one clear message (no traceback)."""


def folder_digest(records: list[dict[str, Any]]) -> str:
    """One sha256 over the sorted (file, sha256) pairs: changes iff any file's name or bytes change."""
    lines = sorted(f"{r['file']}\t{r['sha256']}\n" for r in records)
    return sha256_bytes("".join(lines).encode("utf-8"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def relative_or_absolute(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when it lies inside it, else absolute (for manifest roots)."""
    path, start = Path(path).resolve(), Path(start).resolve()
    try:
        return path.relative_to(start).as_posix() or "."
    except ValueError:
        return path.as_posix()


def staged_manifest(name: str, root: Path, manifest_path: Path, records: list[dict[str, Any]],
                    **extra: Any) -> dict[str, Any]:
    """The common manifest of every staging step: files under ``root`` with their sha256."""
    return {
        "schema": STAGED_SCHEMA,
        "name": name,
        "root": relative_or_absolute(root, Path(manifest_path).parent),
        "count": len(records),
        "digest": folder_digest(records),
        **extra,
        "records": records,
    }


def staged_root(manifest_path: Path, manifest: dict[str, Any]) -> Path:
    return (Path(manifest_path).parent / manifest["root"]).resolve()
