"""Weight files without torch: which files a model reference consists of, their identity, their headers.

Used by the sidecars and the config digest (a result follows the *contents* of its weights, not their
paths) and by ``sms check`` (open every checkpoint and LoRA before any GPU time is spent).
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from sms.hashing import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")   # loading them can run code: refused by default
TINY = "tiny"
RANDOM_SD15 = "sd15-random"  # full-size SD-1.5 architecture, random weights: honest timings, no download
_STAND_IN = re.compile(rf"^({TINY}|{RANDOM_SD15})(?::(\d+))?$")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class WeightFileError(ValueError):
    """A weight file that cannot be what it claims to be (truncated, not safetensors, wrong layout)."""


def parse_stand_in(reference: str) -> tuple[str, int] | None:
    """``'tiny'`` → ('tiny', 0); ``'sd15-random:1'`` → ('sd15-random', 1): a differently seeded copy, e.g.
    a style base that is not the real base, as every style of the release's scripts has (spec §2)."""
    match = _STAND_IN.match(reference)
    return (match.group(1), int(match.group(2) or 0)) if match else None


def is_stand_in(reference: str) -> bool:
    """'tiny', 'tiny:1', 'sd15-random', …: built from config with fixed seeds, no file."""
    return parse_stand_in(reference) is not None


def is_hub_id(reference: str) -> bool:
    """``org/name`` that is not a local path: a Hugging Face hub model."""
    return bool(_HUB_ID.match(reference)) and not Path(reference).suffix and not Path(reference).exists()


def weight_files(reference: str | None) -> list[Path]:
    """The files whose bytes define ``reference``: itself (a single file), every weight file of a diffusers
    folder, nothing for a stand-in or a hub id (the hub pins those by revision)."""
    if not reference or is_stand_in(reference):
        return []
    path = Path(reference).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
    return []


def weight_stamp(reference: str | None) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of each of ``reference``'s weight files: a cache key that a file replaced in place
    misses (cheap, unlike :func:`reference_digest`)."""
    return tuple((str(path.resolve()), stat.st_size, stat.st_mtime_ns)
                 for path in weight_files(reference) for stat in [path.stat()])


def reference_digest(reference: str | None) -> str | None:
    """One sha256 over a reference's weight files (the file's own sha256 for a single file); for a
    stand-in or hub id, the reference itself."""
    if not reference:
        return None
    files = weight_files(reference)
    if not files:
        return reference
    if len(files) == 1 and Path(reference).expanduser().is_file():
        return sha256_file(files[0])
    root = Path(reference).expanduser()
    lines = "".join(f"{f.relative_to(root).as_posix()}\t{sha256_file(f)}\n" for f in files)
    from sms.hashing import sha256_bytes

    return sha256_bytes(lines.encode("utf-8"))


def safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file (tensor name → dtype, shape, offsets), checked against the file
    size so that a truncated download is caught without reading the payload."""
    path = Path(path).expanduser()
    size = path.stat().st_size
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            raise WeightFileError(f"{path}: {size} bytes is too short for a safetensors file")
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > min(size - 8, 100 << 20):
            raise WeightFileError(f"{path}: not a safetensors file (header length {header_len:,} bytes)")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WeightFileError(f"{path}: not a safetensors file (unreadable header: {error})") from None
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_len + max(ends, default=0)
    if expected != size:
        raise WeightFileError(f"{path}: header describes {expected:,} bytes, the file has {size:,} "
                              "(truncated or damaged; download it again)")
    return header
