"""Optional captions beside a source folder: captions.json or captions.csv, keyed by file name.

captions.json: {"0801.png": "a caption", ...} or [{"file": "0801.png", "caption": "..."}, ...]
captions.csv:  a header with a key column (file, filename, image, path or id) and caption (or text).
Keys may be the relative path, the base name or the stem; images without a caption get "".
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from data.files import DataError

CAPTION_FILES = ("captions.json", "captions.csv")
_KEY_COLUMNS = ("file", "filename", "image", "path", "id")
_TEXT_COLUMNS = ("caption", "text")


def captions_file(folder: Path) -> Path | None:
    for name in CAPTION_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def load_captions(folder: Path) -> dict[str, str]:
    path = captions_file(folder)
    if path is None:
        return {}
    try:
        pairs = _json_pairs(path) if path.suffix == ".json" else _csv_pairs(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a valid captions file ({error}); expected the format in "
                        f"data/captions.py: {{\"name.png\": \"caption\"}} or a CSV with file,caption") from None
    return {str(key): str(text) for key, text in pairs}


def _json_pairs(path: Path) -> list[tuple[str, str]]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(payload, dict):
        return list(payload.items())
    return [(_pick(row, _KEY_COLUMNS), _pick(row, _TEXT_COLUMNS)) for row in payload]


def _csv_pairs(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [(_pick(row, _KEY_COLUMNS), _pick(row, _TEXT_COLUMNS)) for row in csv.DictReader(handle)]


def _pick(row: dict, columns: tuple[str, ...]) -> str:
    for column in columns:
        if column in row and row[column] is not None:
            return row[column]
    raise KeyError(f"no column among {', '.join(columns)} in {sorted(row)}")


def caption_for(captions: dict[str, str], relative_file: str) -> str:
    path = Path(relative_file)
    for key in (path.as_posix(), path.name, path.stem, path.with_suffix("").as_posix()):
        if key in captions:
            return captions[key]
    return ""
