"""What the metrics read besides the results folders (``sms.results``): the style reference sets.

A style set is the staged manifest written by ``data.style_set`` / ``data.demo`` (the exact files that
were hashed at staging), or, for by-hand use, a folder read with the suite's one folder lister.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

from sms.folders import list_images
from sms.results import Sample

STAGED_MANIFEST = "manifest.json"


def style_set_images(source: str | Path) -> tuple[Path, ...]:
    """The reference images of a style set: a staged ``manifest.json`` (or a folder holding one), or a folder."""
    source = Path(source).expanduser()
    manifest = source / STAGED_MANIFEST if source.is_dir() else source
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        root = (manifest.parent / data["root"]).resolve()
        images = tuple(root / record["file"] for record in data["records"])
    elif source.is_dir():
        images = tuple(list_images(source))
    else:
        raise FileNotFoundError(f"style set not found: {source} (neither a staged manifest nor a folder)")
    if not images:
        raise ValueError(f"style set has no images: {source}")
    return images


def attach_style_sets(samples: Iterable[Sample], style_sets: Mapping[str, str | Path]) -> list[Sample]:
    """Give each sample the reference images of its style, where a set is given for that style."""
    refs = {name: style_set_images(folder) for name, folder in style_sets.items()}
    return [replace(s, style_refs=refs.get(s.style, ())) for s in samples]
