"""The report's tables built from the metric tables: Table 1 (cost), main, ablation, identity loss, λ sweep.

Our numbers are ``value [95% CI]`` from ``aggregate.csv`` (Table 1 pools ``per_image.csv`` over styles);
the paper's reported numbers sit beside them as reference rows/columns (see :mod:`analysis.paper_numbers`).
"""
from __future__ import annotations

import math

import numpy as np

from analysis import paper_numbers as paper
from analysis.inputs import DEFAULT_LAMBDA, Inputs, Slot
from analysis.tables import Cell, Column, Table
from eval.bootstrap import mean_ci

METHOD_LABELS = {
    "sms": "SMS", "vsd": "VSD", "sds": "SDS", "dds": "DDS", "pds": "PDS",
    "sds_style_prior": "SDS + style prior", "dds_style_prior": "DDS + style prior",
    "pds_style_prior": "PDS + style prior",
}
MAIN_METRICS = [("lpips", "LPIPS ↓"), ("clip_score", "CLIP score ↑"), ("clip_style", "CLIP style ↑"),
                ("fid", "FID ↓"), ("fid_art", "FID_art ↓"), ("artfid", "ArtFID ↓"), ("pickscore", "PickScore ↑")]
# (paper key, row label, run) in sms-spec §10 order; `full` is run `sms`.
ABLATION_ROWS = [("sm_only", "style matching only", "abl_sm_only"), ("sm+psr", "+ PSR", "abl_sm+psr"),
                 ("sm+sagr", "+ SAGR", "abl_sm+sagr"), ("full", "full (SMS)", "full"),
                 ("uniform_t", "uniform t", "abl_full_uniform_t"),
                 ("linear_t", "linear-annealed t", "abl_full_linear_t")]
IDENTITY_ROWS = [("none", "id_none"), ("latent MSE", "id_latent_mse"), ("FFT low-pass", "id_fft_lowpass"),
                 ("PSR, fixed cutoff", "id_psr_fixed"), ("PSR (SMS default)", "id_psr")]
LAMBDAS = [("0", 0.0), ("1e-4", 1e-4), ("2e-4", 2e-4), ("5e-4", 5e-4), ("1e-3", 1e-3), ("2e-3", 2e-3)]
CI_NOTE = ("Ours: mean [95% CI] from reports/metrics/aggregate.csv (percentile bootstrap over images for "
           "per-image metrics, over set resamples for FID/ArtFID).")


def method_label(run: str) -> str:
    return METHOD_LABELS.get(run, run)


def run_text(slot: Slot) -> str:
    if slot.run is None:
        return "—"
    return f"{slot.run} (= {slot.alias})" if slot.alias else slot.run


def _cells(inputs: Inputs, slot: Slot, style: str, metrics: list[str]) -> list[Cell]:
    return [inputs.cell(slot.run, style, metric, why_none=slot.missing) for metric in metrics]


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
                  + [Column("paper_s_per_image", "paper s / image (L40)")])
    for run in inputs.method_runs():
        sidecars = inputs.sidecars(run)
        iterations = sorted({int(s["iterations"]) for s in sidecars if isinstance(s.get("iterations"), int)})
        seconds = inputs.per_image_values(run, "seconds_per_image")
        count = len(seconds) if seconds is not None else len(sidecars)
        reported = paper.RUNTIME_S_PER_IMAGE.get(paper.PAPER_NAME.get(run, ""))
        table.add(method_label(run), run, str(count) if count else "—",
                  ", ".join(map(str, iterations)) or "—",
                  *[_pooled(inputs, run, key, path, scale, sidecars) for key, path, scale, _ in RUNTIME],
                  Cell(reported[1], text=reported[0]) if reported else Cell(text=""))
    for name, (text, value) in paper.RUNTIME_S_PER_IMAGE.items():
        if name not in paper.PAPER_NAME.values():
            table.add(f"{name} — {paper.SOURCE_TABLE1}", "", "", "",
                      *[Cell(text="") for _ in RUNTIME], Cell(value, text=text))
    table.caption = ("Ours: mean [95% CI] over every image of the run (all styles pooled; per_image.csv, else "
                     "the sidecars); UNet forwards per iteration and iterations from the sidecars. Paper: "
                     "supplement Table 1, seconds per image on an L40 (two-stage methods as stage1+stage2); "
                     "the release README quotes about 17 GB of GPU memory for SMS. Blank = not reported.")
    return table


# --- main table ------------------------------------------------------------------------------------------
def main_table(inputs: Inputs) -> Table:
    metrics = [key for key, _ in MAIN_METRICS]
    table = Table("main", "Main table — content preservation, style, preference",
                  [Column("method", "method"), Column("run", "run"), Column("style", "style")]
                  + [Column(key, header) for key, header in MAIN_METRICS])
    for style in inputs.styles:
        for run in inputs.method_runs():
            table.add(method_label(run), run, style, *_cells(inputs, Slot(run, run), style, metrics))
    for name, values in paper.MAIN.items():
        table.add(f"{name} — {paper.SOURCE_NOTES}", "", "DIV2K, paper styles",
                  *[Cell(values[m]) if m in values else Cell(text="") for m in metrics])
    table.caption = (CI_NOTE + " Paper rows: sms-spec §10 [notes, unverified]; their FID is the art-tuned FID "
                     "inside ArtFID ((1+LPIPS)(1+FID) = ArtFID on every row), so it sits under FID_art; "
                     "blank = not reported; subset size, style set and PickScore normalisation unpublished.")
    return table


# --- ablations -------------------------------------------------------------------------------------------
def ablation_table(inputs: Inputs) -> Table:
    metrics = ["lpips", "artfid", "fid_art", "clip_style"]
    table = Table("ablation", "Ablation — components and timestep schedule",
                  [Column("variant", "variant"), Column("run", "run"), Column("style", "style"),
                   Column("lpips", "LPIPS ↓"), Column("artfid", "ArtFID ↓"), Column("fid_art", "FID_art ↓"),
                   Column("clip_style", "CLIP style ↑"), Column("paper_lpips", "paper LPIPS ↓"),
                   Column("paper_artfid", "paper ArtFID ↓")])
    for style in inputs.styles:
        for key, label, run in ABLATION_ROWS:
            slot = inputs.slot(label, run, style)
            reported = paper.ABLATION[key]
            table.add(label, run_text(slot), style, *_cells(inputs, slot, style, metrics),
                      Cell(reported["lpips"]), Cell(reported["artfid"]))
    table.caption = (CI_NOTE + " `full` is run `sms` (same settings, not a separate run). Paper columns: "
                     f"{paper.SOURCE_NOTES}, sms-spec §10.")
    return table


def identity_table(inputs: Inputs) -> Table:
    metrics = ["lpips", "ssim", "psnr", "clip_style", "artfid"]
    table = Table("identity", "Identity loss variants (supplement E.1)",
                  [Column("variant", "identity loss"), Column("run", "run"), Column("style", "style"),
                   Column("lpips", "LPIPS ↓"), Column("ssim", "SSIM ↑"), Column("psnr", "PSNR ↑"),
                   Column("clip_style", "CLIP style ↑"), Column("artfid", "ArtFID ↓")])
    for style in inputs.styles:
        for label, run in IDENTITY_ROWS:
            slot = inputs.slot(label, run, style)
            table.add(label, run_text(slot), style, *_cells(inputs, slot, style, metrics))
    table.caption = CI_NOTE + " `id_psr` is run `sms` (same settings, not a separate run)."
    return table


def lambda_slots(inputs: Inputs, style: str) -> list[tuple[str, float, Slot]]:
    return [(label, value, inputs.slot(f"λ = {label}", f"lambda_{label}", style)) for label, value in LAMBDAS]


def style_metric(inputs: Inputs) -> str | None:
    """clip_style where any λ run has it, else clip_score, else None."""
    runs = [slot.run for style in inputs.styles for _, _, slot in lambda_slots(inputs, style)]
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
        for label, value, slot in lambda_slots(inputs, style):
            lpips = inputs.cell(slot.run, style, "lpips", why_none=slot.missing)
            styled = (inputs.cell(slot.run, style, score, why_none=slot.missing) if score
                      else Cell(note="no style score: neither clip_style nor clip_score has a value"))
            table.add(label, run_text(slot), style, lpips, styled,
                      *_cells(inputs, slot, style, ["clip_score", "artfid"]))
            points.append({"lambda": value, "label": label, "lpips": lpips.value if lpips.present else None,
                           "style_score": styled.value if styled.present else None, "style": style,
                           "run": slot.run or "", "style_metric": score or ""})
    own = ", ".join(f"{style} {inputs.style_lambda.get(style, DEFAULT_LAMBDA):g}" for style in inputs.styles)
    table.caption = (CI_NOTE + f" The row at each style's own λ ({own or 'none'}) is run `sms` unless "
                     "params.yaml has a separate lambda_<λ> run.")
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
    evaluated = inputs.evaluated_runs()
    runs = [run for run in inputs.runs if run in evaluated] + sorted(evaluated - set(inputs.runs))
    table = Table("other_metrics", "Other metrics (all evaluated runs)",
                  [Column("run", "run"), Column("style", "style")]
                  + [Column(m, m + ARROWS.get(direction.get(m, ""), "")) for m in metrics])
    for style in inputs.styles:
        for run in runs:
            if ((frame["method"] == run) & (frame["style"] == style)).any():
                table.add(run, style, *[inputs.cell(run, style, metric) for metric in metrics])
    table.caption = (CI_NOTE + " Runs are listed as evaluated, including any that params.yaml no longer names; "
                     "see the metric definitions at the end.")
    return table
