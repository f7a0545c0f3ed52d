"""Record a user-supplied style folder (Shinkai, Ghibli, LHQ or any other) as a manifest of per-file
sha256 plus one folder digest, so the pipeline tracks exactly which images were used. Files stay in place.

    python -m data.style_set --name shinkai --src data/styles/shinkai --out data/staged/style_shinkai
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from PIL import UnidentifiedImageError

from data.captions import captions_file
from data.files import DataError, staged_manifest
from sms.folders import IMAGE_SUFFIXES, list_images
from sms.hashing import sha256_file
from sms.images import decode_rgb
from sms.outputs import atomic_write_json

KNOWN_SETS = {
    "shinkai": "the 5,958 Makoto Shinkai film frames of Scenimefy (1080x1080; S-Lab licence, rebuilt from the films)",
    "ghibli": "the 714 Studio Ghibli frames used by the paper",
    "lhq": "LHQ landscapes (LHQ256 or LHQ1024; CC BY 2.0 overall, per-image licences vary)",
}
_ACCEPTED = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))


def _what_to_supply(name: str) -> str:
    what = KNOWN_SETS.get(name.lower(), f"the images of the style set {name!r}")
    return (
        f"It should hold {what}. The Shinkai, Ghibli and LHQ sets are not distributed with this suite (their "
        f"licences forbid it): supply the images yourself in one folder ({_ACCEPTED}; any size; subfolders "
        "allowed; an optional captions.json or captions.csv beside them), put it at that path or pass another "
        "with --src, then rerun. data/README.md says where each set comes from; to try the "
        "pipeline offline, use the demo style set instead (python -m data.demo --out DIR --style-out DIR)."
    )


def missing_folder_error(name: str, folder: Path) -> DataError:
    return DataError(f"Style set {name!r}: the folder {folder} does not exist. {_what_to_supply(name)}")


def empty_folder_error(name: str, folder: Path) -> DataError:
    return DataError(f"Style set {name!r}: the folder {folder} contains no image files. {_what_to_supply(name)}")


def _record(root: Path, path: Path) -> dict[str, Any]:
    relative = path.relative_to(root).as_posix()
    return {
        "id": path.relative_to(root).with_suffix("").as_posix().replace("/", "__"),
        "file": relative,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }


def _decodable(root: Path, images: list[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Images the suite's decoder reads; the others are recorded with the reason (never used by a metric)."""
    readable, skipped = [], []
    for path in images:
        try:
            decode_rgb(path)
            readable.append(path)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            skipped.append({"file": path.relative_to(root).as_posix(), "reason": f"not a readable image ({error})"})
            print(f"warning: {path}: skipped, not a readable image ({error})", file=sys.stderr)
    return readable, skipped


def stage_style_set(name: str, src: Path, out: Path) -> dict[str, Any]:
    """Hash every image under ``src`` and write ``out/manifest.json`` (root points at ``src``)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise missing_folder_error(name, src)
    images = list_images(src)
    if not images:
        raise empty_folder_error(name, src)
    readable, skipped = _decodable(src, images)
    if not readable:
        raise empty_folder_error(name, src)
    records = [_record(src, path) for path in readable]
    captions = captions_file(src)
    caption_info = {"file": captions.name, "sha256": sha256_file(captions)} if captions else None
    manifest = staged_manifest(name, src, out / "manifest.json", records, captions=caption_info, skipped=skipped)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.style_set", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="style set name (shinkai, ghibli, lhq or your own)")
    parser.add_argument("--src", type=Path, required=True, help="folder holding the style images")
    parser.add_argument("--out", type=Path, required=True, help="folder for manifest.json")
    args = parser.parse_args(argv)
    try:
        manifest = stage_style_set(args.name, args.src, args.out)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"style set {args.name}: {manifest['count']} images, digest {manifest['digest'][:12]} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
