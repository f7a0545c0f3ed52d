"""What the report reads: params.yaml, the metric tables, the results tree, content and style sets.

Every reader tolerates absence: a missing file or run becomes a note that the report prints, never a crash.
Run names follow params.yaml ``runs``; three rows of the paper's tables are not separate runs but equal
``sms`` (same settings): ``full``, ``id_psr`` and ``lambda_<λ>`` where λ is the style's own λ.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.tables import Cell

DEFAULT_LAMBDA = 5e-4  # sms.config.LoopConfig.lambda_identity
SMS_ALIASES = ("full", "id_psr")  # ablation names whose settings are exactly run `sms`


def image_id(path: str | Path) -> str:
    """The results id of a content image (as sms.runner.image_id_for, without importing torch)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)


@dataclass
class Slot:
    """One row or column of a table/grid: a label and the run that supplies it (None: no run)."""

    label: str
    run: str | None
    alias: str = ""  # the table's own name when an equal run stands in for it (e.g. "full" for sms)
    missing: str = ""  # why there is no run


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
    runs: dict = field(default_factory=dict)
    styles: list[str] = field(default_factory=list)
    style_lambda: dict[str, float] = field(default_factory=dict)
    aggregate: pd.DataFrame | None = None
    per_image: pd.DataFrame | None = None
    problems: list[str] = field(default_factory=list)  # missing inputs, printed in the report

    # --- loading ---------------------------------------------------------------------------------------
    @classmethod
    def load(cls, metrics_dir, results, content, styles_dir, params_path) -> Inputs:
        self = cls(Path(metrics_dir), Path(results), Path(content), Path(styles_dir), Path(params_path))
        self._load_params()
        self.aggregate = self._read_csv(self.metrics_dir / "aggregate.csv")
        self.per_image = self._read_csv(self.metrics_dir / "per_image.csv")
        if self.aggregate is not None:
            for column, default in (("reason", ""), ("status", "ok"), ("ci_low", None), ("ci_high", None)):
                if column not in self.aggregate:
                    self.aggregate[column] = default
            self.aggregate["reason"] = self.aggregate["reason"].fillna("").astype(str)
            self.aggregate["status"] = self.aggregate["status"].fillna("ok").astype(str)
        extra = sorted(set(self._table_styles()) - set(self.styles))
        self.styles += extra
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
        self.runs = dict(self.params.get("runs") or {})
        for name, style in (active.get("styles") or {}).items():
            self.styles.append(str(name))
            value = (style or {}).get("lambda")
            self.style_lambda[str(name)] = float(value) if value is not None else DEFAULT_LAMBDA

    def _read_csv(self, path: Path) -> pd.DataFrame | None:
        if not path.is_file():
            self.problems.append(f"{path} not found: its numbers are shown as — (run the `metrics` stage)")
            return None
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

    def _table_styles(self) -> list[str]:
        found = set()
        if self.aggregate is not None:
            found |= set(self.aggregate["style"])
        if self.results.is_dir():
            found |= {p.name for p in self.results.glob("*/*") if p.is_dir()}
        return [s for s in found if s]

    # --- runs ------------------------------------------------------------------------------------------
    def method_runs(self) -> list[str]:
        """Runs that are a method (not an ablation), in params.yaml order."""
        runs = [name for name, entry in self.runs.items() if isinstance(entry, dict) and "method" in entry]
        return runs or ["sms", "vsd", "sds", "dds", "pds"]

    def evaluated_runs(self) -> set[str]:
        return set(self.aggregate["method"]) if self.aggregate is not None else set()

    def slot(self, label: str, run: str, style: str | None = None) -> Slot:
        """The run behind a table row: itself if params.yaml has it, else ``sms`` where the settings equal it."""
        if run in self.runs or run in self.evaluated_runs():
            return Slot(label, run)
        if run in SMS_ALIASES:
            return Slot(label, "sms", alias=run)
        if run.startswith("lambda_"):
            value = float(run.removeprefix("lambda_"))
            own = self.style_lambda.get(style or "", DEFAULT_LAMBDA)
            if math.isclose(value, own, rel_tol=1e-9, abs_tol=1e-12):
                return Slot(label, "sms", alias=run)
            return Slot(label, None, missing=f"no run {run!r} in params.yaml (only λ = {own:g} equals sms for "
                                             f"style {style!r})")
        return Slot(label, run)  # not in params either: absent, explained where it is looked up

    # --- metric lookup ---------------------------------------------------------------------------------
    def cell(self, run: str | None, style: str, metric: str, *, why_none: str = "") -> Cell:
        if run is None:
            return Cell(note=why_none or "no run")
        if self.aggregate is None:
            return Cell(note=f"no aggregate.csv under {self.metrics_dir}")
        frame = self.aggregate
        rows = frame[(frame["method"] == run) & (frame["style"] == style) & (frame["metric"] == metric)]
        if rows.empty:
            if not (frame["method"] == run).any():
                where = "in params.yaml" if run in self.runs else "not in params.yaml runs"
                return Cell(note=f"run {run!r} ({where}): no rows in aggregate.csv (not stylised/evaluated yet)")
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

    def metric_available(self, metric: str, runs: list[str | None]) -> bool:
        return any(self.cell(run, style, metric).present for run in runs if run for style in self.styles)

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

    def output(self, run: str | None, style: str, image: str) -> Path | None:
        if run is None:
            return None
        path = self.results / run / style / f"{image}.png"
        return path if path.is_file() else None

    def outputs(self, run: str, style: str) -> list[Path]:
        """A run's final images for one style (manifest records; never the previews/ folder)."""
        folder = self.results / run / style
        manifest = folder / "manifest.json"
        if manifest.is_file():
            records = json.loads(manifest.read_text()).get("records", [])
            paths = [folder / r["output"] for r in records if r.get("output")]
        else:
            paths = sorted(folder.glob("*.png"))
        return [p for p in paths if p.is_file()]

    def sidecars(self, run: str) -> list[dict]:
        found = []
        for path in sorted(self.results.glob(f"{glob_escape(run)}/*/*.json")):
            if path.name == "manifest.json":
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        return found

    def per_image_values(self, run: str, column: str) -> np.ndarray | None:
        if self.per_image is None or column not in self.per_image:
            return None
        rows = self.per_image[self.per_image["method"] == run]
        return None if rows.empty else pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
