"""The results folder, torch-free: ``results/<run>/<style>/<id>.png`` + ``<id>.json`` (the sidecar) and a
``manifest.json`` pairing every output with its content image, prompt and style. The runner writes it;
``eval/`` and ``analysis/`` read it through :func:`read_results`, never by file names or sort order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sms.outputs import atomic_write_json

MANIFEST = "manifest.json"
SIDECAR_SCHEMA = 1
#: the columns of a per-image metrics table (eval's per_image.csv) that name the sample; every other is a metric
SAMPLE_COLUMNS = ("results_dir", "id", "method", "style", "output", "content", "prompt")
REQUIRED = ("id", "output")


def image_id(path: str | Path) -> str:
    """The id of a content image in every results folder: its file stem, made file-name safe."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)


def output_paths(out_dir: Path, image: str) -> tuple[Path, Path]:
    return Path(out_dir) / f"{image}.png", Path(out_dir) / f"{image}.json"


def read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, OSError):
        return None


def is_finished(out_dir: Path, image: str, config_digest: str | None = None) -> bool:
    """Both files exist (the sidecar is written last) and, if given, the sidecar's config digest matches."""
    png, sidecar = output_paths(out_dir, image)
    if not (png.is_file() and sidecar.is_file()):
        return False
    if config_digest is None:
        return True
    return (read_sidecar(sidecar) or {}).get("config_digest") == config_digest


def write_manifest(out_dir: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_json(Path(out_dir) / MANIFEST, {"records": sorted(records, key=lambda r: r["id"])})


def rebuild_manifest(out_dir: Path, style_name: str = "", run_name: str = "") -> None:
    """The manifest of every finished output in ``out_dir`` (read back from the sidecars)."""
    records = []
    for sidecar in sorted(Path(out_dir).glob("*.json")):
        data = None if sidecar.name == MANIFEST else read_sidecar(sidecar)
        if not data or not (Path(out_dir) / f"{data.get('id')}.png").is_file():
            continue
        records.append({"id": data["id"], "output": f"{data['id']}.png", "sidecar": sidecar.name,
                        "content": data["source"]["path"], "prompt": data["config"]["prompts"]["target"],
                        "style": style_name or data["config"]["prompts"]["style"],
                        "method": run_name or data["config"]["method"], "base_method": data["config"]["method"]})
    if records:
        write_manifest(out_dir, records)


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
    manifest = results_dir / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{results_dir}: no {MANIFEST}")
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
        sidecar = (read_sidecar(sidecar_path) or {}) if sidecar_path and sidecar_path.is_file() else {}
        samples.append(Sample(id=str(record["id"]), output=output,
                              content=_resolve(results_dir, record.get("content")), prompt=record.get("prompt"),
                              style=record.get("style"), method=record.get("method"), sidecar=sidecar,
                              results_dir=results_dir))
    return samples
