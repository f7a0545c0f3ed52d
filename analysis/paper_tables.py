"""The report's tables built from the metric tables: Table 1 (cost), main, ablation, identity loss, λ sweep.

A table's rows are the runs params.yaml tags with it (``tables: {<table>: <label>}``), in params.yaml order.
Our numbers are ``value [95% CI]`` from ``aggregate.csv`` (Table 1 pools ``per_image.csv`` over styles); the
paper's reported numbers sit beside them, joined by row label (see :mod:`analysis.paper_numbers`).
"""
from __future__ import annotations

import math

import numpy as np

from analysis import paper_numbers as paper
from analysis.inputs import Inputs, Slot
from analysis.tables import Cell, Column, Table
from eval.bootstrap import mean_ci

MAIN_METRICS = [("lpips", "LPIPS ↓"), ("clip_score", "CLIP score ↑"), ("clip_style", "CLIP style ↑"),
                ("fid", "FID ↓"), ("fid_art", "FID_art ↓"), ("artfid", "ArtFID ↓"), ("pickscore", "PickScore ↑")]
CI_NOTE = ("Ours: mean [95% CI] from reports/metrics/aggregate.csv (percentile bootstrap over images for "
           "per-image metrics; FID/ArtFID: value ± 1.96 SE from half-samples of both image sets, an interval for "
           "the expected FID at the sets' sizes).")
BLANK = Cell(text="")


def _cells(inputs: Inputs, run: str, style: str, metrics: list[str]) -> list[Cell]:
    return [inputs.cell(run, style, metric) for metric in metrics]


def _reported(values: dict[str, float], metrics: list[str]) -> list[Cell]:
    return [Cell(values[m]) if m in values else BLANK for m in metrics]


def _paper_only(reported: dict, slots: list[Slot]) -> list[tuple[str, object]]:
    """The paper's rows whose label no tagged run carries."""
    ours = {slot.label for slot in slots}
    return [(label, values) for label, values in reported.items() if label not in ours]


HEADERS = {**dict(MAIN_METRICS), "seconds_per_image": "s / image"}


def _columns_beside_paper(first: tuple[str, str], metrics: list[str], reported: list[str]) -> list[Column]:
    """(label, run, style, our metrics, the paper's metrics): the columns :func:`_rows_beside_paper` fills."""
    return ([Column(*first), Column("run", "run"), Column("style", "style")]
            + [Column(m, HEADERS[m]) for m in metrics] + [Column(f"paper_{m}", f"paper {HEADERS[m]}") for m in reported])


def _rows_beside_paper(table: Table, inputs: Inputs, slots: list[Slot], metrics: list[str],
                       reported: dict[str, dict[str, float]], reported_metrics: list[str], source: str,
                       where: str) -> None:
    """Our rows (every style × tagged run) with the paper's numbers of the same label in the last columns,
    then the paper's rows no run carries."""
    for style in inputs.styles:
        for slot in slots:
            table.add(slot.label, slot.run, style, *_cells(inputs, slot.run, style, metrics),
                      *_reported(reported.get(slot.label, {}), reported_metrics))
    for label, values in _paper_only(reported, slots):
        table.add(f"{label} — {source}", "", where, *[BLANK for _ in metrics], *_reported(values, reported_metrics))


# --- Table 1: cost ---------------------------------------------------------------------------------------
RUNTIME = [  # (per_image.csv column, sidecar key path, scale, header)
    ("seconds_per_image", ("timings", "seconds_total"), 1.0, "s / image"),
    ("seconds_per_iter", ("timings", "seconds_per_iter"), 1.0, "s / iteration"),
    ("unet_forwards_per_iter", ("unet_forwards", "per_iter"), 1.0, "UNet forwards / iteration"),
    ("peak_memory_gib", ("peak_memory_bytes",), 1 / 2**30, "peak memory (GiB)"),
]


def _sidecar_value(sidecar: dict, path: tuple[str, ...], scale: float) -> float:
    value = sidecar
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    try:
        return float(value) * scale
    except (TypeError, ValueError):
        return math.nan


def _pooled(inputs: Inputs, run: str, column: str, path, scale: float, sidecars: list[dict]) -> Cell:
    values = inputs.per_image_values(run, column)
    if values is None or not np.isfinite(values).any():
        values = np.array([_sidecar_value(s, path, scale) for s in sidecars], dtype=float)
    if not np.isfinite(values).any():
        cells = [inputs.cell(run, style, column) for style in inputs.styles]
        present = [c for c in cells if c.present]
        if present:  # aggregate.csv only: the mean over styles, no pooled CI
            return present[0] if len(present) == 1 else Cell(float(np.mean([c.value for c in present])))
        if not sidecars and (inputs.per_image is None or inputs.per_image_values(run, column) is None):
            return Cell(note=f"run {run!r}: no images in per_image.csv and no sidecars under "
                             f"{inputs.results / run}")
        if column == "peak_memory_gib":
            return Cell(note="peak memory not recorded (null in the sidecars: no CUDA peak on a CPU run)")
        return Cell(note=f"{column}: no finite value for run {run!r}")
    mean, low, high, _ = mean_ci(values, 1000, np.random.default_rng(0))
    return Cell(mean, low, high)


def table1_runtime(inputs: Inputs) -> Table:
    table = Table("table1_runtime", "Table 1 — cost per method",
                  [Column("method", "method"), Column("run", "run"), Column("images", "images"),
                   Column("iterations", "iterations")]
                  + [Column(key, header) for key, _, _, header in RUNTIME]
                  + [Column("stages", "stages (s / image)"), Column("paper_s_per_image", "paper s / image (L40)")])
    slots = inputs.tagged("runtime")
    for slot in slots:
        sidecars = inputs.sidecars(slot.run)
        iterations = sorted({int(s["iterations"]) for s in sidecars if isinstance(s.get("iterations"), int)})
        seconds = inputs.per_image_values(slot.run, "seconds_per_image")
        count = len(seconds) if seconds is not None else len(sidecars)
        reported = paper.RUNTIME_S_PER_IMAGE.get(slot.label)
        table.add(slot.label, slot.run, str(count) if count else "—", ", ".join(map(str, iterations)) or "—",
                  *[_pooled(inputs, slot.run, key, path, scale, sidecars) for key, path, scale, _ in RUNTIME],
                  _stages(sidecars), Cell(reported[1], text=reported[0]) if reported else BLANK)
    for label, (text, value) in _paper_only(paper.RUNTIME_S_PER_IMAGE, slots):
        table.add(f"{label} — {paper.SOURCE_TABLE1}", "", "", "", *[BLANK for _ in RUNTIME], BLANK,
                  Cell(value, text=text))
    table.caption = ("Ours: mean [95% CI] over every image of the run (all styles pooled; per_image.csv, else "
                     "the sidecars); UNet forwards per iteration and iterations from the sidecars (a sampling "
                     "method's iterations are its denoising steps); stages: the mean seconds of each timed phase "
                     "of a sampling or classic method, e.g. StyleID's inversion+sampling as the paper splits it. Paper: "
                     "supplement Table 1, seconds per image on an L40 (two-stage methods as stage1+stage2); "
                     "the release README quotes about 17 GB of GPU memory for SMS. Blank = not reported.")
    return table


TOTALS = {"seconds_total", "seconds_iterations", "seconds_per_iter"}


def _stages(sidecars: list[dict]) -> Cell:
    """'inversion 6.55 + sampling 2.68': the mean seconds of each timed phase (sidecar ``timings.seconds_*``)."""
    phases: dict[str, list[float]] = {}
    for sidecar in sidecars:
        for key, value in (sidecar.get("timings") or {}).items():
            if key.startswith("seconds_") and key not in TOTALS and isinstance(value, (int, float)):
                phases.setdefault(key.removeprefix("seconds_"), []).append(float(value))
    if not phases:
        return BLANK
    return Cell(text=" + ".join(f"{name} {np.mean(values):.3g}" for name, values in phases.items()))


# --- main table ------------------------------------------------------------------------------------------
def main_table(inputs: Inputs) -> Table:
    """Every run tagged ``main`` (score distillation, sampling and classic methods alike) with the paper's
    numbers of the same label beside it; the paper's rows no run carries (InstantStyle+: SDXL only) below."""
    metrics = [key for key, _ in MAIN_METRICS]
    reported = ["lpips", "fid_art", "artfid", "pickscore"]
    table = Table("main", "Main table — content preservation, style, preference",
                  _columns_beside_paper(("method", "method"), metrics, reported))
    _rows_beside_paper(table, inputs, inputs.tagged("main"), metrics, paper.MAIN, reported,
                       paper.SOURCE_NOTES, "DIV2K, paper styles")
    table.caption = (CI_NOTE + " Paper columns: sms-spec §10 [notes, unverified], joined by method label; their "
                     "FID is the art-tuned FID inside ArtFID ((1+LPIPS)(1+FID) = ArtFID on every row), so it sits "
                     "beside FID_art; blank = not reported; subset size, style set and PickScore normalisation "
                     "unpublished. Paper-only rows: methods the suite does not run (InstantStyle+ needs SDXL).")
    return table


# --- ablations -------------------------------------------------------------------------------------------
def ablation_table(inputs: Inputs) -> Table:
    metrics, reported = ["lpips", "artfid", "fid_art", "clip_style"], ["lpips", "artfid"]
    table = Table("ablation", "Ablation — components and timestep schedule",
                  _columns_beside_paper(("variant", "variant"), metrics, reported))
    order = list(paper.ABLATION)   # the paper's row order for its variants; other tagged runs after them
    slots = sorted(inputs.tagged("ablation"), key=lambda s: order.index(s.label) if s.label in order else len(order))
    _rows_beside_paper(table, inputs, slots, metrics, paper.ABLATION, reported,
                       paper.SOURCE_NOTES, "DIV2K, paper styles")
    table.caption = CI_NOTE + f" Paper columns: {paper.SOURCE_NOTES}, sms-spec §10, joined by variant label."
    return table


def feedforward_table(inputs: Inputs) -> Table:
    """Generators distilled with each method (issue 14): ours with CIs beside the paper's, joined by label."""
    metrics, reported = ["lpips", "artfid", "fid_art", "seconds_per_image"], ["lpips", "artfid"]
    table = Table("feedforward", "Feed-forward generators — one network per style, trained with each method's loss",
                  _columns_beside_paper(("method", "method"), metrics, reported))
    _rows_beside_paper(table, inputs, inputs.tagged("feedforward"), metrics, paper.FEEDFORWARD, reported,
                       paper.SOURCE_FEEDFORWARD, "paper styles")
    table.caption = (CI_NOTE + " s / image: one forward pass (VAE encode, G_θ, decode; batched). Paper columns: "
                     f"{paper.SOURCE_FEEDFORWARD}, joined by method label; its generator architecture and "
                     "training data are unpublished (the suite's: sms/generator.py, params.yaml `generator`).")
    return table


def identity_table(inputs: Inputs) -> Table:
    metrics = ["lpips", "ssim", "psnr", "clip_style", "artfid"]
    table = Table("identity", "Identity loss variants (supplement E.1)",
                  [Column("variant", "identity loss"), Column("run", "run"), Column("style", "style"),
                   Column("lpips", "LPIPS ↓"), Column("ssim", "SSIM ↑"), Column("psnr", "PSNR ↑"),
                   Column("clip_style", "CLIP style ↑"), Column("artfid", "ArtFID ↓")])
    for style in inputs.styles:
        for slot in inputs.tagged("identity"):
            table.add(slot.label, slot.run, style, *_cells(inputs, slot.run, style, metrics))
    table.caption = CI_NOTE
    return table


# --- λ sweep ---------------------------------------------------------------------------------------------
def lambda_text(value: float) -> str:
    """λ as the paper writes it: 0, 5e-4, 2.5e-3."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa if int(exponent) == 0 else f"{mantissa}e{int(exponent)}"


def lambda_rows(inputs: Inputs, style: str) -> list[tuple[float, Slot]]:
    """The λ-tagged runs for one style with the λ each uses there, in λ order (params.yaml order on ties)."""
    rows = [(inputs.run_lambda(slot.run, style), slot) for slot in inputs.tagged("lambda")]
    return sorted(rows, key=lambda row: row[0])


def style_metric(inputs: Inputs) -> str | None:
    """clip_style where any λ run has it, else clip_score, else None."""
    runs = [slot.run for slot in inputs.tagged("lambda")]
    for metric in ("clip_style", "clip_score"):
        if inputs.metric_available(metric, runs):
            return metric
    return None


def lambda_table(inputs: Inputs, score: str | None) -> tuple[Table, list[dict]]:
    """The λ sweep table and the trade-off points (lambda, lpips, style_score, style, run, style_metric)."""
    table = Table("lambda", "λ sweep (supplement E.2)",
                  [Column("lambda", "λ"), Column("run", "run"), Column("style", "style"),
                   Column("lpips", "LPIPS ↓"), Column("style_score", f"style score ({score or 'none'}) ↑"),
                   Column("clip_score", "CLIP score ↑"), Column("artfid", "ArtFID ↓")])
    points = []
    for style in inputs.styles:
        for value, slot in lambda_rows(inputs, style):
            lpips = inputs.cell(slot.run, style, "lpips")
            styled = (inputs.cell(slot.run, style, score) if score
                      else Cell(note="no style score: neither clip_style nor clip_score has a value"))
            table.add(lambda_text(value), slot.run, style, lpips, styled,
                      *_cells(inputs, slot.run, style, ["clip_score", "artfid"]))
            points.append({"lambda": value, "label": lambda_text(value),
                           "lpips": lpips.value if lpips.present else None,
                           "style_score": styled.value if styled.present else None, "style": style,
                           "run": slot.run, "style_metric": score or ""})
    own = ", ".join(f"{style} {lambda_text(inputs.style_lambda[style])}" for style in inputs.styles
                    if style in inputs.style_lambda)
    table.caption = (CI_NOTE + " λ is the run's loop.lambda_identity where params.yaml sets it, else the style's "
                     f"own λ in profile `{inputs.profile or '?'}` ({own or 'none'}).")
    return table, points


# --- everything else in aggregate.csv --------------------------------------------------------------------
RUNTIME_METRICS = {"seconds_per_image", "seconds_per_iter", "peak_memory_gib", "unet_forwards"}
ARROWS = {"lower": " ↓", "higher": " ↑"}


def other_metrics_table(inputs: Inputs) -> Table | None:
    """Every metric of aggregate.csv not in the main table or Table 1, for every evaluated run and style."""
    frame = inputs.aggregate
    if frame is None:
        return None
    metrics = sorted(set(frame["metric"]) - {key for key, _ in MAIN_METRICS} - RUNTIME_METRICS)
    if not metrics:
        return None
    direction = {} if "direction" not in frame else dict(zip(frame["metric"], frame["direction"].astype(str)))
    table = Table("other_metrics", "Other metrics (all evaluated runs)",
                  [Column("run", "run"), Column("style", "style")]
                  + [Column(m, m + ARROWS.get(direction.get(m, ""), "")) for m in metrics])
    for style in inputs.styles:
        for run in inputs.runs:
            if ((frame["method"] == run) & (frame["style"] == style)).any():
                table.add(run, style, *[inputs.cell(run, style, metric) for metric in metrics])
    table.caption = (CI_NOTE + " Every run params.yaml declares that has rows, in params.yaml order; see the "
                     "metric definitions at the end.")
    return table
