"""Writes the offline results browser: ``<out>/index.html``, ``<out>/browser/`` (scripts, style sheet and
``data.js``, the data as one global, since browsers refuse fetch() of local files) and ``<out>/thumbs/``.

No server and no network: every script, thumbnail and image is a relative path under the project.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analysis.browser import collect
from analysis.browser.thumbs import DEFAULT_PX, Thumbnails
from analysis.inputs import Inputs, Slot
from analysis.tables import Table
from sms.outputs import atomic_write_bytes
from sms.paths import cache_dir

ASSETS = Path(__file__).with_name("assets")
PAGE = "index.html"
FILES = ("app.js", "grid.js", "compare.js", "tables.js", "style.css")  # copied to <out>/browser/
# the report's grids (analysis.report names them) → the browser's title and the run tag each one shows
REPORT_GRIDS = {"methods": ("Methods", "main"), "style_prior": ("Style-prior baselines", "main"),
                "ablation": ("Component ablation", "ablation"), "identity": ("Identity losses", "identity"),
                "lambda": ("λ sweep", "lambda"), "feedforward": ("Feed-forward generators", "feedforward")}
TAG_TITLES = {"main": "Main table", "runtime": "Runtime (Table 1)", "rapsd": "RAPSD runs",
              "ablation": "Component ablation", "identity": "Identity losses", "lambda": "λ sweep",
              "feedforward": "Feed-forward generators"}


@dataclass
class Browser:
    """What :func:`write_browser` wrote: the page, its assets and data, and the thumbnails it made or reused."""

    page: Path
    files: list[Path] = field(default_factory=list)
    thumbs: Thumbnails | None = None


def build_groups(inputs: Inputs, grids: dict[str, Callable[[str], list[Slot]]] | None = None) -> list[tuple]:
    """The grid's column sets: the report's grids, then one per other run tag, runs in no table, all runs.
    Each is (key, title, {style: [Slot]}); a set with the same runs as an earlier one is left out."""
    groups, covered = [], set()
    for name, slots_for in (grids or {}).items():
        title, tag = REPORT_GRIDS.get(name, (name, name))
        groups.append((name, title, {style: list(slots_for(style)) for style in inputs.styles}))
        covered.add(tag)
    tags = dict.fromkeys(tag for entry in inputs.runs.values() for tag in (entry.get("tables") or {}))
    for tag in tags:
        if tag not in covered:
            groups.append((tag, TAG_TITLES.get(tag, tag), {style: inputs.tagged(tag) for style in inputs.styles}))
    labels = collect.run_labels(inputs)
    untagged = [Slot(labels[run]["label"], run) for run, entry in inputs.runs.items() if not entry.get("tables")]
    if untagged:
        groups.append(("untagged", "Runs in no table", {style: untagged for style in inputs.styles}))
    everything = [Slot(labels[run]["label"], run) for run in inputs.runs]
    groups.append(("all", "All runs", {style: everything for style in inputs.styles}))
    unique, seen = [], set()
    for key, title, columns in groups:
        signature = tuple((style, tuple(slot.run for slot in slots)) for style, slots in columns.items())
        if signature not in seen and any(columns.values()):
            unique.append((key, title, columns))
            seen.add(signature)
    return unique


def collect_data(inputs: Inputs, out: Path, thumbs: Thumbnails, *, tables=(), grids=None, figures=(),
                 standin=(), real=()) -> dict:
    images, provenance = collect.images(inputs, out, thumbs)
    content = collect.content(inputs, out, thumbs)
    names, per_image = collect.per_image_metrics(inputs)
    aggregate = collect.metrics_table(inputs)
    all_tables: list[Table] = [*([aggregate] if aggregate else []), *tables]
    return {
        "profile": inputs.profile, "label": inputs.label, "standin": list(standin), "real": list(real),
        "standinRuns": collect.stand_in_runs(provenance),
        "styles": inputs.styles, "runs": collect.run_labels(inputs),
        "groups": collect.groups_json(build_groups(inputs, grids)),
        # the ids' order as a list too: JavaScript orders integer-like object keys ("7", "12") numerically
        "content": content, "contentOrder": list(content), "images": images, "provenance": provenance,
        "metrics": {"names": names, "direction": collect.directions(inputs), "values": per_image},
        "tables": [collect.table_json(table) for table in all_tables],
        "figures": [{"title": collect.figure_title(path), "src": collect.url(path, out)}
                    for path in figures if Path(path).suffix == ".png" and Path(path).parent == out / "figures"],
        "problems": [*inputs.problems, *thumbs.failed],
    }


def write_browser(inputs: Inputs, out: Path, *, tables: list[Table] = (), grids=None, figures: list[Path] = (),
                  standin: list[str] = (), real: list[str] = (), thumb_px: int = DEFAULT_PX,
                  store: Path | None = None) -> Browser:
    """Write the page for ``inputs`` under ``out``. ``tables``: the report's tables; ``grids``: the report's
    grid columns by grid name (name → style → slots); ``figures``: the report's files (its PNGs under
    ``<out>/figures`` are shown); ``standin``/``real``: the metrics on random stand-in / real weights;
    ``store``: where thumbnails are kept across report folders (default ``$SMS_CACHE/thumbs``)."""
    out = Path(out)
    thumbs = Thumbnails(out / "thumbs", thumb_px, store if store is not None else cache_dir() / "thumbs")
    data = collect_data(inputs, out, thumbs, tables=tables, grids=grids, figures=figures, standin=standin,
                        real=real)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    browser = Browser(out / PAGE, thumbs=thumbs)
    atomic_write_bytes(browser.page, (ASSETS / PAGE).read_bytes())
    for name in FILES:
        atomic_write_bytes(out / "browser" / name, (ASSETS / name).read_bytes())
    atomic_write_bytes(out / "browser" / "data.js", f"window.SMS_DATA = {text};\n".encode())
    browser.files = [browser.page, *(out / "browser" / name for name in (*FILES, "data.js"))]
    thumbs.prune()
    return browser
