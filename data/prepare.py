"""Prepare a set for the pipeline: centre-crop to square, resize, write PNGs + manifest.json.

SRC is a staged manifest.json (from data.demo, data.div2k, data.style_set), a folder holding one, or a
plain folder of images. Unreadable, corrupt or changed-since-staging images are skipped and listed with
the reason under "skipped"; nothing aborts.

    python -m data.prepare SRC --out data/prepared/demo --size 64 [--name NAME] [--limit N] [--workers N]
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.captions import caption_for, load_captions
from data.files import PREPARED_SCHEMA, STAGED_SCHEMA, DataError, folder_digest, read_json, staged_root
from data.images import load_rgb, square_resized
from sms.folders import list_images
from sms.hashing import sha256_bytes, sha256_file
from sms.outputs import atomic_write_bytes, atomic_write_json, png_bytes


@dataclass(frozen=True)
class SourceImage:
    id: str
    path: Path
    file: str
    source: str
    expected_sha256: str | None = None


@dataclass(frozen=True)
class SourceSet:
    name: str
    root: Path
    images: list[SourceImage]


def _staged_manifest_path(src: Path) -> Path | None:
    candidate = src if src.is_file() else src / "manifest.json"
    if candidate.is_file() and read_json(candidate).get("schema") == STAGED_SCHEMA:
        return candidate
    if src.is_file():
        raise DataError(f"{src} is not a staged manifest (schema {STAGED_SCHEMA}); pass it or its folder")
    return None


def read_source_set(src: Path) -> SourceSet:
    src = Path(src)
    if not src.exists():
        raise DataError(f"source {src} does not exist; stage it first (python -m data.demo / data.div2k / "
                        "data.style_set) or pass a folder of images")
    manifest_path = _staged_manifest_path(src)
    if manifest_path is None:
        images = [SourceImage(_stem_id(p.relative_to(src)), p, p.relative_to(src).as_posix(),
                              p.relative_to(src).as_posix()) for p in list_images(src)]
        return SourceSet(src.resolve().name, src, images)
    manifest = read_json(manifest_path)
    root = staged_root(manifest_path, manifest)
    images = [SourceImage(r.get("id") or _stem_id(Path(r["file"])), root / r["file"], r["file"],
                          r.get("source", r["file"]), r.get("sha256")) for r in manifest["records"]]
    return SourceSet(manifest["name"], root, images)


def _stem_id(relative: Path) -> str:
    return relative.with_suffix("").as_posix().replace("/", "__")


def unique_ids(images: list[SourceImage]) -> list[str]:
    """File-system-safe ids; repeats (a.png and a.jpg) get -2, -3, ... in source order."""
    taken: set[str] = set()
    result = []
    for image in images:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", image.id).strip(".") or "image"
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        result.append(candidate)
    return result


@dataclass(frozen=True)
class Task:
    image: SourceImage
    id: str
    out: Path
    size: int
    caption: str


def prepare_one(task: Task) -> tuple[str, dict[str, Any]]:
    """("ok", record) with the PNG written, or ("skipped", entry with the reason)."""
    image = task.image
    base = {"id": task.id, "source": image.source, "file": image.file}
    try:
        source_sha256 = sha256_file(image.path)
        if image.expected_sha256 and source_sha256 != image.expected_sha256:
            reason = f"sha256 changed since staging (expected {image.expected_sha256}, got {source_sha256})"
            return "skipped", {**base, "reason": reason}
        decoded = load_rgb(image.path)
        square = square_resized(decoded, task.size)
    except Exception as error:  # any decoder failure (Pillow raises many types) means "skip", never "abort"
        reason = f"{type(error).__name__}: {error}".replace(str(image.path), image.file)
        return "skipped", {**base, "reason": reason}
    data = png_bytes(square)
    atomic_write_bytes(task.out / f"{task.id}.png", data)
    return "ok", {"id": task.id, "path": f"{task.id}.png", "source": image.source, "source_file": image.file,
                  "source_sha256": source_sha256, "sha256": sha256_bytes(data), "width": square.width,
                  "height": square.height, "source_width": decoded.width, "source_height": decoded.height,
                  "caption": task.caption}


def _run(tasks: list[Task], workers: int) -> Iterable[tuple[str, dict[str, Any]]]:
    if workers <= 1:
        return map(prepare_one, tasks)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(prepare_one, tasks, chunksize=8))


def _remove_stale_outputs(out: Path, keep: set[str]) -> None:
    """Delete PNGs that an earlier manifest in ``out`` listed and this run did not write."""
    previous = out / "manifest.json"
    if not previous.is_file() or read_json(previous).get("schema") != PREPARED_SCHEMA:
        return
    for record in read_json(previous).get("records", []):
        if record["path"] not in keep:
            (out / record["path"]).unlink(missing_ok=True)


def prepare(src: Path, out: Path, size: int, *, name: str | None = None, limit: int | None = None,
            workers: int = 1) -> dict[str, Any]:
    if size < 1:
        raise DataError(f"--size must be a positive number of pixels, got {size}")
    source_set = read_source_set(src)
    images = source_set.images[:limit] if limit is not None else source_set.images
    captions = load_captions(source_set.root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [Task(image, id_, out, size, caption_for(captions, image.file))
             for image, id_ in zip(images, unique_ids(images), strict=True)]
    records, skipped = [], []
    for status, entry in _run(tasks, workers):
        (records if status == "ok" else skipped).append(entry)
    _remove_stale_outputs(out, {record["path"] for record in records})
    hashed = [{"file": r["source_file"], "sha256": r["source_sha256"]} for r in records]
    manifest = {"schema": PREPARED_SCHEMA, "name": name or source_set.name, "size": size,
                "source": {"path": str(src), "root": str(source_set.root), "digest_of_used": folder_digest(hashed)},
                "count": len(records), "records": records, "skipped": skipped}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="staged manifest.json, its folder, or a folder of images")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs and manifest.json")
    parser.add_argument("--size", type=int, required=True, help="square side in pixels (paper 512, demo 64)")
    parser.add_argument("--name", help="set name in the manifest (default: the source's)")
    parser.add_argument("--limit", type=int, help="only the first N source images (stable order)")
    parser.add_argument("--workers", type=int, default=1, help="decoder processes (default 1)")
    args = parser.parse_args(argv)
    try:
        manifest = prepare(args.src, args.out, args.size, name=args.name, limit=args.limit, workers=args.workers)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{manifest['name']}: {manifest['count']} prepared at {args.size}px, {len(manifest['skipped'])} skipped "
          f"-> {args.out / 'manifest.json'}")
    for entry in manifest["skipped"]:
        print(f"  skipped {entry['file']}: {entry['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
