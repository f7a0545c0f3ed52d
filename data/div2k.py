"""Stage DIV2K HR (valid by default, or train) from a checked zip, an extracted folder, or -- only with
--allow-download -- the official URL. DIV2K is for academic use only: never commit or redistribute it.

    python -m data.div2k --out data/staged/div2k_valid [--split valid|train]
        [--zip PATH | --folder PATH] [--download-dir DIR] [--allow-download]
        [--expected-sha256 HEX] [--expected-count N] [--first-index N]
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from data.files import DataError, staged_manifest
from sms.hashing import sha256_file
from sms.outputs import atomic_path, atomic_write_json

_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_IMAGE_NAME = re.compile(r"^\d{4}\.png$")
LICENCE = "DIV2K: academic use only; never commit or redistribute the images"


@dataclass(frozen=True)
class Div2kSplit:
    name: str
    archive: str
    sha256: str
    n_bytes: int
    count: int
    first_index: int

    @property
    def url(self) -> str:
        return f"{_BASE_URL}/{self.archive}.zip"

    def expected_names(self) -> list[str]:
        return [f"{index:04d}.png" for index in range(self.first_index, self.first_index + self.count)]


SPLITS = {
    "valid": Div2kSplit("valid", "DIV2K_valid_HR", "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
                        448_993_893, 100, 801),
    "train": Div2kSplit("train", "DIV2K_train_HR", "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
                        3_530_603_713, 800, 1),
}


def verify_checksum(path: Path, expected: str, actual: str | None = None) -> None:
    actual = actual or sha256_file(path)
    if actual.lower() != expected.lower():
        raise DataError(
            f"checksum mismatch for {path}: expected sha256 {expected.lower()}, got {actual}. The file is "
            "incomplete or not the official DIV2K archive: supply the official one. If you are sure this "
            "archive is right (for example a copy you re-zipped), accept its checksum explicitly: in params.yaml "
            "set the profile's `content.sha256` to it, or by hand pass --expected-sha256."
        )


def check_image_names(found: list[str], split: Div2kSplit, where: Path) -> None:
    expected = split.expected_names()
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected or len(found) != len(expected):
        raise DataError(
            f"{where}: expected the {len(expected)} DIV2K {split.name} images {expected[0]} ... {expected[-1]}, "
            f"found {len(found)} image file(s); missing: {_short(missing)}; unexpected: {_short(unexpected)}"
        )


def _short(names: list[str], limit: int = 5) -> str:
    if not names:
        return "none"
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _image_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or "__MACOSX" in path.parts or not _IMAGE_NAME.match(path.name):
            continue
        if path.name in members:
            raise DataError(f"the archive holds {path.name} twice ({members[path.name].filename}, {info.filename})")
        members[path.name] = info
    return members


def extract_images(zip_path: Path, out: Path, split: Div2kSplit) -> None:
    """Extract exactly the expected PNGs by base name (no paths from the archive are trusted)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _image_members(archive)
            check_image_names(list(members), split, zip_path)
            out.mkdir(parents=True, exist_ok=True)
            for name in split.expected_names():
                with archive.open(members[name]) as source, atomic_path(out / name) as tmp:
                    with open(tmp, "wb") as target:
                        shutil.copyfileobj(source, target, 1 << 20)
    except zipfile.BadZipFile as error:
        raise DataError(f"{zip_path} is not a readable zip archive ({error})") from None


def download(url: str, target: Path, expected_sha256: str) -> None:
    """Stream ``url`` to ``target`` while hashing; ``target`` appears only if the checksum matches."""
    print(f"downloading {url} -> {target}", file=sys.stderr)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    handle.write(chunk)
            verify_checksum(target, expected_sha256, digest.hexdigest())
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"download of {url} failed: {error}") from None


def _not_available(split: Div2kSplit, cached: Path) -> DataError:
    names = split.expected_names()
    return DataError(
        f"DIV2K {split.name} HR is not available locally ({cached} does not exist) and downloading is off. "
        f"Pass --zip PATH to {split.archive}.zip ({split.n_bytes:,} bytes, sha256 {split.sha256}), or --folder "
        f"PATH to its extracted folder of {names[0]} ... {names[-1]}, or rerun with --allow-download to fetch "
        f"{split.url}. {LICENCE}."
    )


def _record(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    with Image.open(path) as image:
        width, height = image.size
    return {"id": Path(name).stem, "file": name, "sha256": sha256_file(path), "width": width, "height": height,
            "licence": LICENCE}


def write_manifest(out: Path, root: Path, split: Div2kSplit, archive: dict[str, Any] | None) -> dict[str, Any]:
    records = [_record(root, name) for name in split.expected_names()]
    manifest = staged_manifest(f"div2k-{split.name}", root, out / "manifest.json", records,
                               split=split.name, archive=archive, licence=LICENCE)
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def stage_from_folder(folder: Path, out: Path, split: Div2kSplit) -> dict[str, Any]:
    folder = Path(folder)
    if (folder / split.archive).is_dir():
        folder = folder / split.archive
    if not folder.is_dir():
        raise DataError(f"--folder {folder} is not a folder; it should hold the extracted {split.archive} PNGs")
    found = [p.name for p in folder.iterdir() if p.is_file() and _IMAGE_NAME.match(p.name)]
    check_image_names(found, split, folder)
    return write_manifest(Path(out), folder, split, archive=None)


def stage_from_zip(zip_path: Path, out: Path, split: Div2kSplit, checksum: str | None = None,
                   accepted_sha256: str | None = None) -> dict[str, Any]:
    """``accepted_sha256``: the user's own checksum, replacing the official one (recorded with a warning)."""
    zip_path, out = Path(zip_path), Path(out)
    if not zip_path.is_file():
        raise DataError(f"DIV2K zip {zip_path} does not exist")
    checksum = checksum or sha256_file(zip_path)
    overridden = accepted_sha256 is not None and accepted_sha256.lower() != split.sha256
    verify_checksum(zip_path, accepted_sha256 or split.sha256, checksum)
    extract_images(zip_path, out, split)
    archive = {"file": zip_path.name, "sha256": checksum, "url": split.url}
    if overridden:
        archive["warning"] = (f"not the official archive: its sha256 was accepted from the user's settings instead "
                              f"of the official {split.sha256}; results may not be comparable with the paper's")
        print(f"warning: {zip_path}: {archive['warning']}", file=sys.stderr)
    return write_manifest(out, out, split, archive)


def stage_div2k(out: Path, split: Div2kSplit, *, zip_path: Path | None = None, folder: Path | None = None,
                download_dir: Path | None = None, allow_download: bool = False,
                accepted_sha256: str | None = None) -> dict[str, Any]:
    """Stage from --folder, else --zip, else the cached zip in ``download_dir``, else download if allowed."""
    out = Path(out)
    if folder is not None:
        return stage_from_folder(folder, out, split)
    if zip_path is not None:
        return stage_from_zip(zip_path, out, split, accepted_sha256=accepted_sha256)
    cached = Path(download_dir or out.parent / "downloads") / f"{split.archive}.zip"
    if cached.is_file():
        return stage_from_zip(cached, out, split)
    if not allow_download:
        raise _not_available(split, cached)
    download(split.url, cached, split.sha256)
    return stage_from_zip(cached, out, split, checksum=split.sha256)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data.div2k", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (zip) and manifest.json")
    parser.add_argument("--split", choices=sorted(SPLITS), default="valid")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--zip", type=Path, help="local DIV2K_<split>_HR.zip (checked, then extracted)")
    source.add_argument("--folder", type=Path, help="already extracted folder of the split's PNGs (used in place)")
    parser.add_argument("--download-dir", type=Path, help="where the zip is cached (default: OUT/../downloads)")
    parser.add_argument("--allow-download", action="store_true", help="fetch the official zip if not cached")
    parser.add_argument("--expected-sha256", help="override the archive checksum (tests, mirrors)")
    parser.add_argument("--expected-count", type=int, help="override the number of images")
    parser.add_argument("--first-index", type=int, help="override the first image number (0801 -> 801)")
    return parser.parse_args(argv)


def split_from_args(args: argparse.Namespace) -> Div2kSplit:
    split = SPLITS[args.split]
    if args.expected_count is not None and args.expected_count < 1:
        raise DataError("--expected-count must be at least 1")
    overrides = {"sha256": args.expected_sha256, "count": args.expected_count, "first_index": args.first_index}
    return replace(split, **{key: value for key, value in overrides.items() if value is not None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        split = split_from_args(args)
        manifest = stage_div2k(args.out, split, zip_path=args.zip, folder=args.folder,
                               download_dir=args.download_dir, allow_download=args.allow_download)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{manifest['name']}: {manifest['count']} images -> {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
