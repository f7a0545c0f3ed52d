"""What the results browser shows, as one JSON-ready dict: runs and their groups, every image with its
thumbnail, full-size file and sidecar, per-image metrics, the report's tables and figures, the provenance.

Everything is read through :class:`analysis.inputs.Inputs` (the report's one reader of params.yaml, the
metric tables and the results folders). Paths are URLs relative to the report folder, so the page works from
the file system and from any static host that serves the project.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from analysis.inputs import Inputs, Slot
from analysis.paper_tables import ARROWS, RUNTIME_METRICS
from analysis.tables import Cell, Column, Table
from sms.results import SAMPLE_COLUMNS, Sample
from sms.weights import is_stand_in


def url(path: Path | None, out: Path) -> str | None:
    """``path`` relative to ``out`` as a URL path (percent-encoded); a file URL where no relative path exists."""
    if path is None:
        return None
    try:
        relative = os.path.relpath(Path(path).resolve(), Path(out).resolve())
    except ValueError:  # another drive on Windows
        return Path(path).resolve().as_uri()
    return quote(relative.replace(os.sep, "/"))


def _number(value) -> float | None:
    """A finite float rounded to 6 significant digits (the page prints at most 4), else None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _dig(mapping, *keys):
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping


def directions(inputs: Inputs) -> dict[str, str]:
    """``lower`` or ``higher`` is better, per metric: aggregate.csv's direction; runtime columns are costs."""
    found = {name: "lower" for name in RUNTIME_METRICS | {"unet_forwards_per_iter"}}
    frame = inputs.aggregate
    if frame is not None and "direction" in frame:
        for metric, direction in zip(frame["metric"], frame["direction"].astype(str)):
            if direction in ("lower", "higher"):
                found[str(metric)] = direction
    return found


def per_image_metrics(inputs: Inputs) -> tuple[list[str], dict]:
    """(metric names, {style: {run: {id: [value per name]}}}) from per_image.csv."""
    frame = inputs.per_image
    if frame is None or frame.empty or "id" not in frame:
        return [], {}
    values = {c: pd.to_numeric(frame[c], errors="coerce") for c in frame.columns if c not in SAMPLE_COLUMNS}
    names = sorted(name for name, column in values.items() if column.notna().any())
    matrix = np.column_stack([values[n].to_numpy(dtype=float) for n in names]) if names else np.empty((len(frame), 0))
    table: dict = {}
    for run, style, image, row in zip(frame["method"], frame["style"], frame["id"].astype(str), matrix):
        table.setdefault(style, {}).setdefault(run, {})[image] = [_number(value) for value in row]
    return names, table


def _image_entry(sample: Sample, out: Path, thumbs) -> list:
    """[thumbnail, full size, sidecar, seed, seconds]: the sidecar is ``<id>.json`` beside ``<id>.png``."""
    sidecar = sample.output.with_suffix(".json")
    thumb = thumbs(sample.output)
    return [url(thumb, out), url(sample.output, out), url(sidecar, out) if sidecar.is_file() else None,
            _dig(sample.sidecar, "seed"), _number(_dig(sample.sidecar, "timings", "seconds_total"))]


def _folder_provenance(samples: list[Sample]) -> dict:
    """What one results folder's sidecars share: model hashes, config digest, iterations, device."""
    sidecars = [dict(s.sidecar) for s in samples if s.sidecar]
    if not sidecars:
        return {}
    digests = {s.get("config_digest") for s in sidecars}
    iterations = sorted({s.get("iterations") for s in sidecars if isinstance(s.get("iterations"), int)})
    return {"models": sidecars[0].get("models") or {},
            "config_digest": digests.pop() if len(digests) == 1 else f"{len(digests)} different",
            "iterations": iterations, "label": sidecars[0].get("label", ""),
            "device": _dig(sidecars[0], "environment", "device"), "dtype": _dig(sidecars[0], "environment", "dtype")}


def images(inputs: Inputs, out: Path, thumbs) -> tuple[dict, dict]:
    """({style: {run: {id: entry}}}, {style: {run: provenance}}) for every declared run's outputs."""
    found: dict = {}
    provenance: dict = {}
    for style in inputs.styles:
        for run in inputs.runs:
            samples = inputs.samples(run, style)
            if samples:
                found.setdefault(style, {})[run] = {s.id: _image_entry(s, out, thumbs) for s in samples}
                provenance.setdefault(style, {})[run] = _folder_provenance(samples)
    return found, provenance


def stand_in_runs(provenance: dict) -> list[str]:
    """Runs stylised with a random stand-in model (``tiny``, ``sd15-random``) in any style."""
    return sorted({run for runs in provenance.values() for run, info in runs.items()
                   if is_stand_in(str((info.get("models") or {}).get("base") or ""))})


def content(inputs: Inputs, out: Path, thumbs) -> dict[str, list]:
    """{id: [thumbnail, full size]} of the content images, in manifest order."""
    return {image: [url(thumbs(path) if path.is_file() else None, out), url(path, out)]
            for image, path in inputs.content_images()}


def run_labels(inputs: Inputs) -> dict[str, dict]:
    """Per run: a label (its first table label where no other run shares it, else the run name) and method."""
    first = {run: next(iter((entry.get("tables") or {}).values()), run) for run, entry in inputs.runs.items()}
    counts = Counter(first.values())
    return {run: {"label": str(label) if counts[label] == 1 else run, "method": str(entry.get("method", "")),
                  "tables": {str(k): str(v) for k, v in (entry.get("tables") or {}).items()}}
            for (run, entry), label in zip(inputs.runs.items(), first.values())}


def metrics_table(inputs: Inputs) -> Table | None:
    """Every metric of aggregate.csv for every declared run and style with rows: value [95% CI]."""
    frame = inputs.aggregate
    if frame is None or frame.empty:
        return None
    metrics = list(dict.fromkeys(frame["metric"].astype(str)))
    direction = directions(inputs)
    table = Table("aggregate", "All metrics (aggregate.csv)",
                  [Column("run", "run"), Column("method", "method"), Column("style", "style")]
                  + [Column(m, m + ARROWS.get(direction.get(m, ""), "")) for m in metrics])
    for style in inputs.styles:
        for run, entry in inputs.runs.items():
            if ((frame["method"] == run) & (frame["style"] == style)).any():
                table.add(run, str(entry.get("method", "")), style,
                          *[inputs.cell(run, style, metric) for metric in metrics])
    table.caption = "Mean [95% CI] per run and style, as aggregate.csv holds them; — = no value (reason below)."
    return table


def table_json(table: Table) -> dict:
    """Columns (key, header, numeric) and rows of [shown text, number or None] cells, plus the notes."""
    numeric = table.numeric_columns()
    rows = [[[text, cell.value if isinstance(cell, Cell) and cell.present else None]
             for text, cell in zip(shown, row)] for shown, row in zip(table.display_rows(), table.rows)]
    return {"name": table.name, "title": table.title, "caption": table.caption, "notes": table.notes(),
            "columns": [[c.key, c.header, num] for c, num in zip(table.columns, numeric)], "rows": rows}


def figure_title(path: Path) -> str:
    if path.stem.startswith("rapsd_"):
        return f"RAPSD — {path.stem[len('rapsd_'):]}"
    return {"lambda_tradeoff": "Content–style trade-off (λ sweep)"}.get(path.stem, path.stem.replace("_", " "))


def groups_json(groups: list[tuple[str, str, dict[str, list[Slot]]]]) -> list[dict]:
    return [{"key": key, "title": title,
             "columns": {style: [[slot.label, slot.run] for slot in slots] for style, slots in columns.items()}}
            for key, title, columns in groups]
