"""What the report reads: params.yaml, the metric tables, the results tree, content and style sets.

Which runs the report shows, and under which row label, is data: each run of params.yaml ``runs`` names
the tables it is a row of (``tables: {<table>: <label>}``). Rows of runs params.yaml does not declare are
ignored. The metric tables are the evaluate stage's ``<metrics>/aggregate.csv`` and ``per_image.csv``.

Every reader tolerates absence: a missing file or run becomes a note that the report prints, never a crash.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.tables import Cell
from sms.results import Sample, image_id, read_results

DEFAULT_LAMBDA = 5e-4  # sms.config.LoopConfig.lambda_identity (sms.config imports torch)


@dataclass(frozen=True)
class Slot:
    """One row or column of a table/grid: its label and the declared run that supplies it."""

    label: str
    run: str


@dataclass
class Inputs:
    metrics_dir: Path
    results: Path
    content: Path
    styles_dir: Path
    params_path: Path
    params: dict = field(default_factory=dict)
    profile: str = ""
    label: str = ""
    runs: dict[str, dict] = field(default_factory=dict)  # the declared runs, params.yaml order
    styles: list[str] = field(default_factory=list)
    style_lambda: dict[str, float] = field(default_factory=dict)
    aggregate: pd.DataFrame | None = None
    per_image: pd.DataFrame | None = None
    problems: list[str] = field(default_factory=list)  # missing or ignored inputs, printed in the report
    _samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict, repr=False)

    # --- loading ---------------------------------------------------------------------------------------
    @classmethod
    def load(cls, metrics_dir, results, content, styles_dir, params_path) -> Inputs:
        self = cls(Path(metrics_dir), Path(results), Path(content), Path(styles_dir), Path(params_path))
        self._load_params()
        self.aggregate = self._read_metrics("aggregate.csv")
        self.per_image = self._read_metrics("per_image.csv")
        self._drop_undeclared_runs()
        if self.aggregate is not None:
            for column, default in (("reason", ""), ("status", "ok"), ("ci_low", None), ("ci_high", None)):
                if column not in self.aggregate:
                    self.aggregate[column] = default
            self.aggregate["reason"] = self.aggregate["reason"].fillna("").astype(str)
            self.aggregate["status"] = self.aggregate["status"].fillna("ok").astype(str)
        self.styles += sorted(set(self._table_styles()) - set(self.styles))
        if not self.styles:
            self.problems.append("no styles in params.yaml, aggregate.csv or results/: style-wise parts are empty")
        return self

    def _load_params(self) -> None:
        if not self.params_path.is_file():
            self.problems.append(f"{self.params_path} not found: no profile label, runs or styles from it")
            return
        self.params = yaml.safe_load(self.params_path.read_text()) or {}
        self.profile = str(self.params.get("profile", ""))
        active = (self.params.get("profiles") or {}).get(self.profile) or {}
        self.label = str(active.get("label", ""))
        for name, entry in (self.params.get("runs") or {}).items():
            if isinstance(entry, dict):
                self.runs[str(name)] = entry
            else:
                self.problems.append(f"params.yaml runs.{name} is not a mapping: run ignored")
        for name, style in (active.get("styles") or {}).items():
            self.styles.append(str(name))
            value = (style or {}).get("lambda")
            self.style_lambda[str(name)] = float(value) if value is not None else DEFAULT_LAMBDA

    def _read_metrics(self, name: str) -> pd.DataFrame | None:
        path = self.metrics_dir / name
        if not path.is_file():
            self.problems.append(f"{path} not found: its numbers are shown as — (run the `evaluate` stage)")
            return None
        return self._read_csv(path)

    def _read_csv(self, path: Path) -> pd.DataFrame | None:
        try:
            frame = pd.read_csv(path, dtype={"method": str, "style": str, "id": str, "reason": str})
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            self.problems.append(f"{path} unreadable ({type(error).__name__}: {error}): not used")
            return None
        needed = {"method", "style", "metric", "value"} if path.name == "aggregate.csv" else {"method"}
        if needed - set(frame.columns):
            self.problems.append(f"{path} lacks columns {sorted(needed - set(frame.columns))}: not used")
            return None
        if "style" not in frame:
            frame["style"] = ""
        frame["method"] = frame["method"].fillna("")
        frame["style"] = frame["style"].fillna("")
        return frame

    def _drop_undeclared_runs(self) -> None:
        """A metric table's ``method`` column is the run name: keep only the runs params.yaml declares."""
        ignored: set[str] = set()
        for name in ("aggregate", "per_image"):
            frame = getattr(self, name)
            if frame is None:
                continue
            declared = frame["method"].isin(list(self.runs))
            ignored |= set(frame.loc[~declared, "method"])
            setattr(self, name, frame[declared].reset_index(drop=True))
        if ignored:
            names = ", ".join(sorted(name or "(blank)" for name in ignored))
            self.problems.append(f"ignored: not declared in params.yaml: runs {names} (their rows of "
                                 "aggregate.csv/per_image.csv are not reported)")

    def _table_styles(self) -> list[str]:
        found = set()
        if self.aggregate is not None:
            found |= set(self.aggregate["style"])
        for run in self.runs:
            if (self.results / run).is_dir():
                # results/RUN/_generator/ holds a feed-forward run's trained generators, not a style
                found |= {p.name for p in (self.results / run).iterdir() if p.is_dir() and not p.name.startswith("_")}
        return [s for s in found if s]

    # --- runs ------------------------------------------------------------------------------------------
    def tagged(self, table: str) -> list[Slot]:
        """The rows of ``table``: every run whose ``tables`` names it, with its label, in params.yaml order."""
        slots = []
        for run, entry in self.runs.items():
            tables = entry.get("tables")
            if isinstance(tables, dict) and table in tables:
                slots.append(Slot(str(tables[table]), run))
        return slots

    def run_lambda(self, run: str, style: str) -> float:
        """The identity weight λ a run uses for a style: its ``loop.lambda_identity``, else the style's own."""
        value = (self.runs.get(run, {}).get("loop") or {}).get("lambda_identity")
        return float(value) if value is not None else self.style_lambda.get(style, DEFAULT_LAMBDA)

    # --- metric lookup ---------------------------------------------------------------------------------
    def cell(self, run: str, style: str, metric: str) -> Cell:
        if self.aggregate is None:
            return Cell(note=f"no aggregate.csv under {self.metrics_dir}")
        frame = self.aggregate
        rows = frame[(frame["method"] == run) & (frame["style"] == style) & (frame["metric"] == metric)]
        if rows.empty:
            if not (frame["method"] == run).any():
                return Cell(note=f"run {run!r}: no rows in aggregate.csv (not stylised/evaluated yet)")
            if not ((frame["method"] == run) & (frame["style"] == style)).any():
                return Cell(note=f"run {run!r} has no style {style!r} in aggregate.csv")
            return Cell(note=f"{metric}: not evaluated (no row in aggregate.csv)")
        row = rows.iloc[-1]
        if row["status"] != "ok":
            return Cell(note=f"{metric} {row['status']}: {row['reason'] or 'no reason given'}")
        value = float(row["value"])
        if not math.isfinite(value):
            return Cell(note=f"{metric}: no finite value (n = {row.get('n', 0)})")
        return Cell(value, _float(row.get("ci_low")), _float(row.get("ci_high")))

    def metric_available(self, metric: str, runs: list[str]) -> bool:
        return any(self.cell(run, style, metric).present for run in runs for style in self.styles)

    def definitions(self) -> dict[str, str]:
        if self.aggregate is None or "definition_id" not in self.aggregate:
            return {}
        found = {}
        for row in self.aggregate.itertuples():
            text = "" if pd.isna(row.definition_id) else str(row.definition_id)
            if text:
                found.setdefault(row.metric, text)
        return dict(sorted(found.items()))

    # --- images and sidecars ---------------------------------------------------------------------------
    def content_images(self) -> list[tuple[str, Path]]:
        """(results id, path) of the content images, in manifest order."""
        manifest = self.content / "manifest.json"
        if manifest.is_file():
            records = json.loads(manifest.read_text()).get("records", [])
            return [(image_id(r["path"]), self.content / r["path"]) for r in records if r.get("path")]
        if self.content.is_dir():
            return [(image_id(p), p) for p in sorted(self.content.glob("*.png"))]
        return []

    def samples(self, run: str, style: str) -> list[Sample]:
        """A run's outputs for one style as its results manifest lists them (none if it cannot be read)."""
        key = (run, style)
        if key not in self._samples:
            folder = self.results / run / style
            try:
                self._samples[key] = read_results(folder) if folder.is_dir() else []
            except (OSError, ValueError, KeyError, TypeError) as error:
                self.problems.append(f"{folder}: results not read ({type(error).__name__}: {error})")
                self._samples[key] = []
        return self._samples[key]

    def output(self, run: str, style: str, image: str) -> Path | None:
        return next((s.output for s in self.samples(run, style) if s.id == image), None)

    def outputs(self, run: str, style: str) -> list[Path]:
        return [s.output for s in self.samples(run, style)]

    def sidecars(self, run: str) -> list[dict]:
        return [dict(s.sidecar) for style in self.styles for s in self.samples(run, style) if s.sidecar]

    def per_image_values(self, run: str, column: str) -> np.ndarray | None:
        if self.per_image is None or column not in self.per_image:
            return None
        rows = self.per_image[self.per_image["method"] == run]
        return None if rows.empty else pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
