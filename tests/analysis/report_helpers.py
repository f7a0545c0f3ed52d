"""Helpers shared by the analysis tests: a small synthetic params.yaml + metrics + results tree."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from analysis.inputs import Inputs
from analysis.report import main

LABEL = "embedded default: tiny random models; numbers test the machinery, not the paper"
STYLE = "watercolor"
IDS = ["c0", "c1", "c2"]
SIZE = 32
TILE = 32
OFFICIAL = {"method": "sms", "profile": "official"}
RUNS = {  # the repo's params.yaml `runs`, shortened
    "sms": {"method": "sms", "tables": {"main": "SMS", "runtime": "SMS", "rapsd": "SMS", "ablation": "full (SMS)",
                                        "identity": "PSR (SMS default)", "lambda": "SMS"}},
    **{run: {"method": run, "tables": {"main": run.upper(), "runtime": run.upper(), "rapsd": run.upper()}}
       for run in ("vsd", "sds", "dds", "pds")},
    "sds_style_prior": {"method": "sds", "set": {"prior": "style"},
                        "tables": {"main": "SDS + style prior", "runtime": "SDS + style prior"}},
    "abl_sm_only": {**OFFICIAL, "set": {"relevance": False}, "loop": {"identity": "none"},
                    "tables": {"ablation": "style matching only"}},
    "abl_sm+psr": {**OFFICIAL, "set": {"relevance": False}, "loop": {"identity": "psr"},
                   "tables": {"ablation": "+ PSR"}},
    "id_none": {**OFFICIAL, "loop": {"identity": "none"}, "tables": {"identity": "none"}},
    **{f"lambda_{text}": {**OFFICIAL, "loop": {"identity": "psr", "lambda_identity": float(text)},
                          "tables": {"lambda": "λ sweep"}} for text in ("0", "1e-4", "2e-4", "1e-3", "2e-3")},
}
UNDECLARED = "stray_run"  # has images and metric rows but no entry in params.yaml
# run → (lpips, ci_low, ci_high, clip_style); runs with images and aggregate rows (vsd, pds, abl_sm+psr: none)
LPIPS = {"sms": (0.412, 0.391, 0.437, 61.0), "dds": (0.52, 0.5, 0.55, 58.0), "sds": (0.71, 0.69, 0.74, 57.0),
         "sds_style_prior": (0.69, 0.66, 0.72, 59.5), "abl_sm_only": (0.655, 0.612, 0.701, 63.0),
         "id_none": (0.68, 0.65, 0.71, 64.0), "lambda_0": (0.6, 0.58, 0.62, 66.0),
         "lambda_1e-4": (0.5, 0.48, 0.52, 64.5), "lambda_2e-4": (0.45, 0.43, 0.47, 63.0),
         "lambda_1e-3": (0.3, 0.28, 0.32, 58.0), "lambda_2e-3": (0.25, 0.23, 0.27, 55.0),
         UNDECLARED: (0.987, 0.95, 0.99, 12.5)}
FID_REASON = "no Inception checkpoint: set weights.inception in params.yaml"
SECONDS = {"sms": [2.0, 4.0, 6.0], "dds": [1.0, 1.0, 1.0]}


def noisy(colour, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, dtype=float) + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def write_params(root: Path, runs: dict, styles: dict | None = None) -> Path:
    params = {"profile": "demo", "profiles": {"demo": {"label": LABEL, "styles": styles or {STYLE: {"lambda": 5e-4}}}},
              "runs": runs}
    (root / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    return root / "params.yaml"


def build_tree(root: Path, runs: dict = RUNS) -> dict[str, Path]:
    content, styles, results, metrics = (root / n for n in ("content", "styles", "results", "metrics"))
    content.mkdir(parents=True)
    for k, image_id in enumerate(IDS):
        noisy((60 * k, 100, 200 - 60 * k), k).save(content / f"{image_id}.png")
    (content / "manifest.json").write_text(json.dumps(
        {"schema": "sms-suite/prepared/v1", "records": [{"id": i, "path": f"{i}.png"} for i in IDS]}))
    (styles / STYLE).mkdir(parents=True)
    for k in range(3):
        noisy((200, 150, 50), 10 + k).save(styles / STYLE / f"ref{k}.png")
    per_image, aggregate = [], []
    for r, run in enumerate(LPIPS):
        folder = results / run / STYLE
        folder.mkdir(parents=True)
        records = []
        for k, image_id in enumerate(IDS):
            noisy((20 * r, 255 - 20 * r, 40 * k), 100 * r + k).save(folder / f"{image_id}.png")
            seconds = SECONDS.get(run, [3.0] * 3)[k]
            (folder / f"{image_id}.json").write_text(json.dumps({
                "id": image_id, "iterations": 12, "label": LABEL, "peak_memory_bytes": None,
                "timings": {"seconds_total": seconds, "seconds_per_iter": seconds / 12},
                "unet_forwards": {"total": 72 if run == "sms" else 24, "per_iter": 6.0 if run == "sms" else 2.0}}))
            records.append({"id": image_id, "output": f"{image_id}.png", "sidecar": f"{image_id}.json",
                            "content": str(content / f"{image_id}.png"), "style": STYLE, "method": run})
            per_image.append({"results_dir": str(folder), "id": image_id, "method": run, "style": STYLE,
                              "output": str(folder / f"{image_id}.png"), "content": "", "prompt": "",
                              "lpips": LPIPS[run][0], "seconds_per_image": seconds,
                              "seconds_per_iter": seconds / 12, "peak_memory_gib": ""})
        (folder / "manifest.json").write_text(json.dumps({"records": records}))
        lpips, low, high, clip_style = LPIPS[run]
        base = {"method": run, "style": STYLE, "n": 3, "definition_id": "", "status": "ok", "reason": ""}
        aggregate += [
            {**base, "metric": "lpips", "value": lpips, "ci_low": low, "ci_high": high, "direction": "lower",
             "definition_id": "lpips:alex"},
            {**base, "metric": "clip_style", "value": clip_style, "ci_low": clip_style - 1,
             "ci_high": clip_style + 1, "direction": "higher", "definition_id": "clip_style:standin-random"},
            {**base, "metric": "fid", "value": "", "ci_low": "", "ci_high": "", "n": 0, "direction": "lower",
             "status": "skipped", "reason": FID_REASON},
            {**base, "metric": "ssim", "value": 0.5 + r / 100, "ci_low": "", "ci_high": "", "direction": "higher"},
        ]
    metrics.mkdir()
    for name, rows in (("per_image.csv", per_image), ("aggregate.csv", aggregate)):
        with open(metrics / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return {"content": content, "styles": styles, "results": results, "metrics": metrics,
            "params": write_params(root, runs), "out": root / "reports" / "paper"}


def run_report(paths: dict[str, Path], *extra: str) -> int:
    return main(["--metrics", str(paths["metrics"]), "--results", str(paths["results"]), "--content",
                 str(paths["content"]), "--styles", str(paths["styles"]), "--params", str(paths["params"]),
                 "--out", str(paths["out"]), "--tile", str(TILE), *extra])


def load_inputs(paths: dict[str, Path]) -> Inputs:
    return Inputs.load(paths["metrics"], paths["results"], paths["content"], paths["styles"], paths["params"])


def table_row(markdown: str, first_cell: str, style: str = STYLE) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell and style in cells:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{markdown}")


def first_cells(markdown: str) -> list[str]:
    """The first cell of every table row (header and rule excluded)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [line.strip("|").split("|")[0].strip() for line in lines[1:]]


def notes(markdown: str) -> dict[str, str]:
    return dict(re.findall(r"^- \[(\d+)\] (.*)$", markdown, flags=re.M))
