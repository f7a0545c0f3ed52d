"""analysis.report on a small synthetic tree: table values, the sms aliases, λ CSV, grids, skips, links."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.figures import header_height
from analysis.report import main
from analysis.tables import Cell

LABEL = "embedded default: tiny random models; numbers test the machinery, not the paper"
STYLE = "watercolor"
IDS = ["c0", "c1", "c2"]
SIZE = 32
TILE = 32
RUNS = {"sms": {"method": "sms"}, "vsd": {"method": "vsd"}, "sds": {"method": "sds"}, "dds": {"method": "dds"},
        "pds": {"method": "pds"}, "sds_style_prior": {"method": "sds", "set": {"prior": "style"}},
        "abl_sm_only": {"ablation": "sm_only"}, "abl_sm+psr": {"ablation": "sm+psr"},
        "id_none": {"ablation": "id_none"}, "lambda_0": {"ablation": "lambda_0"},
        "lambda_1e-4": {"ablation": "lambda_1e-4"}, "lambda_2e-4": {"ablation": "lambda_2e-4"},
        "lambda_1e-3": {"ablation": "lambda_1e-3"}, "lambda_2e-3": {"ablation": "lambda_2e-3"}}
# run → (lpips, ci_low, ci_high, clip_style); runs with images and aggregate rows (vsd, pds, abl_sm+psr: none)
LPIPS = {"sms": (0.412, 0.391, 0.437, 61.0), "dds": (0.52, 0.5, 0.55, 58.0), "sds": (0.71, 0.69, 0.74, 57.0),
         "sds_style_prior": (0.69, 0.66, 0.72, 59.5), "abl_sm_only": (0.655, 0.612, 0.701, 63.0),
         "id_none": (0.68, 0.65, 0.71, 64.0), "lambda_0": (0.6, 0.58, 0.62, 66.0),
         "lambda_1e-4": (0.5, 0.48, 0.52, 64.5), "lambda_2e-4": (0.45, 0.43, 0.47, 63.0),
         "lambda_1e-3": (0.3, 0.28, 0.32, 58.0), "lambda_2e-3": (0.25, 0.23, 0.27, 55.0)}
FID_REASON = "no Inception checkpoint: set weights.inception in params.yaml"
SECONDS = {"sms": [2.0, 4.0, 6.0], "dds": [1.0, 1.0, 1.0]}


def noisy(colour, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, dtype=float) + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def build_tree(root: Path) -> dict[str, Path]:
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
    params = {"profile": "demo", "profiles": {"demo": {"label": LABEL, "styles": {STYLE: {"lambda": 5e-4}}}},
              "runs": RUNS}
    (root / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    return {"content": content, "styles": styles, "results": results, "metrics": metrics,
            "params": root / "params.yaml", "out": root / "reports" / "paper"}


def run_report(paths: dict[str, Path], *extra: str) -> int:
    return main(["--metrics", str(paths["metrics"]), "--results", str(paths["results"]), "--content",
                 str(paths["content"]), "--styles", str(paths["styles"]), "--params", str(paths["params"]),
                 "--out", str(paths["out"]), "--tile", str(TILE), *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = build_tree(tmp_path_factory.mktemp("report"))
    assert run_report(paths) == 0
    return paths


def table_row(markdown: str, first_cell: str, style: str = STYLE) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell and style in cells:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{markdown}")


def notes(markdown: str) -> dict[str, str]:
    return dict(re.findall(r"^- \[(\d+)\] (.*)$", markdown, flags=re.M))


def test_report_starts_with_the_bold_profile_label_and_links_every_file_it_wrote(built):
    out = built["out"]
    text = (out / "report.md").read_text()
    assert text.splitlines()[0] == f"**{LABEL}**"
    assert "**Computed with random stand-in weights (clip_style;" in text  # flagged from the definition ids
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert targets and all((out / t).is_file() for t in targets), [t for t in targets if not (out / t).is_file()]
    linked = {(out / t).resolve() for t in targets}
    written = {p.resolve() for p in out.rglob("*") if p.is_file() and p.name != "report.md"}
    written |= {(out.parent / "plots" / n).resolve() for n in ("lambda_tradeoff.csv", "rapsd.csv")}
    assert written - linked == set()
    assert {p.suffix for p in written} == {".md", ".csv", ".tex", ".png", ".pdf"}


def test_main_table_has_our_rows_with_value_and_ci_and_the_papers_reference_rows(built):
    main_md = (built["out"] / "tables" / "main.md").read_text()
    sms = table_row(main_md, "SMS")
    assert sms[1] == "sms" and sms[3] == "0.412 [0.39, 0.44]"  # LPIPS column
    assert sms[5] == "61.000 [60.00, 62.00]"  # CLIP style
    assert table_row(main_md, "DDS")[3] == "0.520 [0.50, 0.55]"
    paper = table_row(main_md, "SMS — paper [notes, unverified]", "DIV2K, paper styles")
    assert paper[3] == "0.326" and paper[7] == "13.089" and paper[8] == "18.686" and paper[9] == "1.487"
    assert paper[6] == ""  # the paper's FID is the art-tuned one: under FID_art, not plain FID
    assert table_row(main_md, "DDS — paper [notes, unverified]", "DIV2K, paper styles")[3] == "0.513"
    # the same rows are in report.md and the CSV holds the unformatted numbers
    assert "| SMS | sms | watercolor | 0.412 [0.39, 0.44] |" in (built["out"] / "report.md").read_text()
    rows = list(csv.DictReader(open(built["out"] / "tables" / "main.csv")))
    sms_csv = next(r for r in rows if r["run"] == "sms")
    assert float(sms_csv["lpips"]) == 0.412 and float(sms_csv["lpips_ci_low"]) == 0.391
    assert FID_REASON in sms_csv["notes"]
    other = (built["out"] / "tables" / "other_metrics.md").read_text()  # metrics outside the main table
    assert "| run | style | ssim ↑ |" in other
    assert table_row(other, "sms")[2] == "0.500" and table_row(other, "dds")[2] == "0.510"
    tex = (built["out"] / "tables" / "main.tex").read_text()
    assert "\\begin{tabular}" in tex and "FID\\_art" in tex and "0.412 [0.39, 0.44]" in tex


def test_skipped_metric_and_absent_run_render_as_dash_with_the_reason(built):
    main_md = (built["out"] / "tables" / "main.md").read_text()
    fid = table_row(main_md, "SMS")[6]
    number = re.fullmatch(r"— \[(\d+)\]", fid).group(1)
    assert notes(main_md)[number] == f"fid skipped: {FID_REASON}"
    vsd = table_row(main_md, "VSD")
    assert all(cell.startswith("— [") for cell in vsd[3:])
    assert "run 'vsd' (in params.yaml): no rows in aggregate.csv" in notes(main_md)[vsd[3][3:-1]]
    report = (built["out"] / "report.md").read_text()
    assert f"fid skipped: {FID_REASON}" in report


def test_ablation_maps_full_to_sms_and_sits_beside_the_papers_numbers(built):
    ablation = (built["out"] / "tables" / "ablation.md").read_text()
    full = table_row(ablation, "full (SMS)")
    assert full[1] == "sms (= full)" and full[3] == "0.412 [0.39, 0.44]"
    assert full[-2:] == ["0.326", "18.686"]
    only = table_row(ablation, "style matching only")
    assert only[1] == "abl_sm_only" and only[3] == "0.655 [0.61, 0.70]" and only[-2:] == ["0.703", "26.403"]
    psr = table_row(ablation, "+ PSR")
    assert psr[3].startswith("— [") and psr[-2:] == ["0.505", "24.132"]
    uniform = table_row(ablation, "uniform t")  # not in params.yaml at all
    assert "not in params.yaml runs" in notes(ablation)[uniform[3][3:-1]]
    identity = (built["out"] / "tables" / "identity.md").read_text()
    assert table_row(identity, "PSR (SMS default)")[1:4] == ["sms (= id_psr)", STYLE, "0.412 [0.39, 0.44]"]


def test_lambda_tradeoff_csv_has_six_points_in_lambda_order_from_the_aggregate(built):
    rows = list(csv.DictReader(open(built["out"].parent / "plots" / "lambda_tradeoff.csv")))
    assert [float(r["lambda"]) for r in rows] == [0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3]
    runs = ["lambda_0", "lambda_1e-4", "lambda_2e-4", "sms", "lambda_1e-3", "lambda_2e-3"]
    assert [r["run"] for r in rows] == runs
    assert [float(r["lpips"]) for r in rows] == [LPIPS[run][0] for run in runs]
    assert [float(r["style_score"]) for r in rows] == [LPIPS[run][3] for run in runs]
    assert {r["style_metric"] for r in rows} == {"clip_style"} and {r["style"] for r in rows} == {STYLE}
    assert "Style score used for the trade-off: clip_style" in (built["out"] / "report.md").read_text()
    assert (built["out"] / "figures" / "lambda_tradeoff.pdf").read_bytes().startswith(b"%PDF")


def test_grids_have_one_tile_per_column_and_placeholders_for_absent_runs(built):
    grids = built["out"] / "grids"
    header = header_height(TILE)
    expected_columns = {"methods": 6, "style_prior": 7, "identity": 6, "lambda": 7, "ablation": 7}
    for name, columns in expected_columns.items():
        with Image.open(grids / f"{name}_{STYLE}.png") as grid:
            assert grid.size == (columns * TILE, header + len(IDS) * TILE), name
    grid = np.asarray(Image.open(grids / f"methods_{STYLE}.png").convert("RGB"))
    for row, image_id in enumerate(IDS):
        top = header + row * TILE
        content = np.asarray(Image.open(built["content"] / f"{image_id}.png").convert("RGB"))
        sms = np.asarray(Image.open(built["results"] / "sms" / STYLE / f"{image_id}.png").convert("RGB"))
        assert np.abs(grid[top:top + TILE, :TILE].astype(int) - content).mean() < 2  # column 0: content
        assert np.abs(grid[top:top + TILE, TILE:2 * TILE].astype(int) - sms).mean() < 2  # column 1: SMS
        vsd = grid[top + 2:top + 8, 2 * TILE + 2:2 * TILE + 8]  # column 2: VSD absent → grey placeholder
        assert (vsd == 215).all()
    assert "VSD: no images under" in (built["out"] / "report.md").read_text()


def test_cells_format_value_and_ci_and_keep_small_values_readable():
    assert Cell(0.3261, 0.2987, 0.3512).display() == "0.326 [0.30, 0.35]"
    assert Cell(9.7e-06, 9.1e-06, 1.03e-05).display() == "9.7e-06 [9.1e-06, 1e-05]"
    assert Cell(2.8372e21, 2.4e21, 4.26e21).display() == "2.837e+21 [2.40e+21, 4.26e+21]"
    assert Cell(13.0891).display() == "13.089" and Cell(float("nan"), note="x").display() == "—"
    assert Cell(text="6.553+2.683").display() == "6.553+2.683"


def test_table1_pools_per_image_runtimes_and_shows_the_papers_seconds_beside(built):
    table1 = (built["out"] / "tables" / "table1_runtime.md").read_text()
    sms = table_row(table1, "SMS", "sms")
    assert sms[2:4] == ["3", "12"]
    assert sms[4].startswith("4.000 [")  # mean of 2, 4, 6 s
    assert sms[6] == "6.000 [6.00, 6.00]" and sms[-1] == "87.582"
    assert "no CUDA peak" in notes(table1)[sms[7][3:-1]]
    assert table_row(table1, "DDS", "dds")[-1] == "31.716"
    assert table_row(table1, "StyleID — paper [supp Table 1, L40]", "")[-1] == "6.553+2.683"


def test_rapsd_csv_holds_content_style_set_and_method_curves(built):
    rows = list(csv.DictReader(open(built["out"].parent / "plots" / "rapsd.csv")))
    assert list(rows[0]) == ["domain", "freq", "mean", "low", "high"]
    domains = list(dict.fromkeys(r["domain"] for r in rows))
    assert domains == ["content", f"style:{STYLE}", f"sms/{STYLE}", f"sds/{STYLE}", f"dds/{STYLE}"]
    assert all(sum(r["domain"] == d for r in rows) == SIZE // 2 for d in domains)
    assert all(float(r["low"]) <= float(r["mean"]) + 1e-12 <= float(r["high"]) + 2e-12 for r in rows)
    with Image.open(built["out"] / "figures" / f"rapsd_{STYLE}.png") as figure:
        assert figure.width > 2 * figure.height


def test_missing_metrics_and_results_do_not_crash(tmp_path):
    paths = build_tree(tmp_path)
    for name in ("aggregate.csv", "per_image.csv"):
        (paths["metrics"] / name).unlink()
    paths["results"] = tmp_path / "nowhere"
    assert run_report(paths) == 0
    report = (paths["out"] / "report.md").read_text()
    assert "aggregate.csv not found" in report
    rows = list(csv.DictReader(open(paths["out"].parent / "plots" / "lambda_tradeoff.csv")))
    assert len(rows) == 6 and all(r["lpips"] == "" for r in rows)
    assert "0 points" in report
    with Image.open(paths["out"] / "grids" / f"methods_{STYLE}.png") as grid:
        assert grid.size == (6 * TILE, header_height(TILE) + len(IDS) * TILE)


def test_lambda_rows_equal_sms_only_at_the_styles_own_lambda(tmp_path):
    from analysis.inputs import Inputs

    params = {"profile": "paper", "profiles": {"paper": {"label": "x", "styles": {
        "watercolor": {"lambda": 5e-4}, "pixel": {"lambda": 2e-4}}}},
        "runs": {"sms": {"method": "sms"}, "lambda_2e-4": {"ablation": "lambda_2e-4"}}}
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    inputs = Inputs.load(tmp_path / "m", tmp_path / "r", tmp_path / "c", tmp_path / "s", tmp_path / "params.yaml")
    assert inputs.styles == ["watercolor", "pixel"]
    assert (inputs.slot("λ", "lambda_5e-4", "watercolor").run, inputs.slot("λ", "lambda_5e-4", "pixel").run) == \
        ("sms", None)
    assert "style 'pixel'" in inputs.slot("λ", "lambda_5e-4", "pixel").missing
    assert inputs.slot("λ", "lambda_2e-4", "pixel").run == "lambda_2e-4"  # a run of its own wins
    assert [inputs.slot("", name).run for name in ("full", "id_psr", "id_none")] == ["sms", "sms", "id_none"]
    assert any("aggregate.csv not found" in p for p in inputs.problems)
