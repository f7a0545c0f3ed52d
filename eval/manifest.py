"""Read a results folder: ``manifest.json`` pairs every output with its content image, prompt and style.

Pairing comes from the manifest records only, never from file names or sort order.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
REQUIRED = ("id", "output")


@dataclass(frozen=True)
class Sample:
    """One stylised output and everything it is compared against."""

    id: str
    output: Path
    content: Path | None = None
    prompt: str | None = None
    style: str | None = None
    method: str | None = None
    sidecar: Mapping = field(default_factory=dict, compare=False, hash=False)
    results_dir: Path | None = None
    style_refs: tuple[Path, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.results_dir), self.id)


def _resolve(base: Path, value: str | None) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def read_results(results_dir: str | Path) -> list[Sample]:
    """The samples of one results folder, in manifest order."""
    results_dir = Path(results_dir).resolve()
    manifest = results_dir / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{results_dir}: no manifest.json")
    records = json.loads(manifest.read_text())["records"]
    samples, seen = [], set()
    for index, record in enumerate(records):
        missing = [key for key in REQUIRED if not record.get(key)]
        if missing:
            raise ValueError(f"{manifest}: record {index} lacks {missing}")
        if record["id"] in seen:
            raise ValueError(f"{manifest}: duplicate id {record['id']!r}")
        seen.add(record["id"])
        output = _resolve(results_dir, record["output"])
        if not output.is_file():
            raise FileNotFoundError(f"{manifest}: output of {record['id']!r} not found: {output}")
        sidecar_path = _resolve(results_dir, record.get("sidecar"))
        sidecar = json.loads(sidecar_path.read_text()) if sidecar_path and sidecar_path.is_file() else {}
        samples.append(
            Sample(
                id=str(record["id"]),
                output=output,
                content=_resolve(results_dir, record.get("content")),
                prompt=record.get("prompt"),
                style=record.get("style"),
                method=record.get("method"),
                sidecar=sidecar,
                results_dir=results_dir,
            )
        )
    return samples


def style_set_images(folder: str | Path) -> tuple[Path, ...]:
    """The images of a style reference folder (sorted only so runs are reproducible)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"style set folder not found: {folder}")
    images = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
    if not images:
        raise ValueError(f"style set folder has no images: {folder}")
    return images


def attach_style_sets(samples: Iterable[Sample], style_sets: Mapping[str, str | Path]) -> list[Sample]:
    """Give each sample the reference images of its style, where a set is given for that style."""
    from dataclasses import replace

    refs = {name: style_set_images(folder) for name, folder in style_sets.items()}
    return [replace(s, style_refs=refs.get(s.style, ())) for s in samples]
