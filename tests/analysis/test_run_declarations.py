"""Runs are data: params.yaml `runs.<run>.tables` alone decides which run is a row of which table, and how."""
from __future__ import annotations

import ast
import copy
import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml
from report_helpers import (
    LPIPS,
    RUNS,
    STYLE,
    UNDECLARED,
    build_tree,
    first_cells,
    load_inputs,
    run_report,
    table_row,
    write_params,
)

from analysis import paper_tables as pt

REPO = Path(__file__).resolve().parents[2]


def main_table(paths) -> str:
    return pt.main_table(load_inputs(paths)).to_markdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_tree(tmp_path_factory.mktemp("declared"))


def test_a_run_tagged_main_is_a_main_table_row_under_its_label_and_untagging_removes_it(tree):
    runs = {**RUNS, UNDECLARED: {"method": "sms", "set": {"relevance": False}, "tables": {"main": "My method"}}}
    write_params(tree["params"].parent, runs)
    row = table_row(main_table(tree), "My method")
    assert row[1:4] == [UNDECLARED, STYLE, "0.987 [0.95, 0.99]"] and row[5] == "12.500 [11.50, 13.50]"
    assert first_cells(main_table(tree)).index("My method") == 6  # params.yaml order: after the six main runs

    runs[UNDECLARED] = {"method": "sms", "set": {"relevance": False}}  # declared, tagged with nothing
    write_params(tree["params"].parent, runs)
    assert "My method" not in first_cells(main_table(tree))
    assert UNDECLARED not in main_table(tree)
    other = pt.other_metrics_table(load_inputs(tree)).to_markdown()  # still a declared run with rows
    assert table_row(other, UNDECLARED)[2] == f"{0.5 + list(LPIPS).index(UNDECLARED) / 100:.3f}"
    write_params(tree["params"].parent, RUNS)


def test_undeclared_runs_appear_in_no_table_and_once_in_the_report_notes(tmp_path):
    paths = build_tree(tmp_path)
    assert run_report(paths) == 0
    tables = [path.read_text() for path in (paths["out"] / "tables").glob("*.*")]
    assert len(tables) == 3 * 7 and all(UNDECLARED not in text for text in tables)
    assert all("0.987" not in text for text in tables)  # its LPIPS, under no other name either
    for name in ("lambda_tradeoff.csv", "rapsd.csv"):
        assert UNDECLARED not in (paths["out"] / name).read_text()
    report = (paths["out"] / "report.md").read_text()
    ignored = [line for line in report.splitlines() if "ignored: not declared in params.yaml" in line]
    assert len(ignored) == 1 and UNDECLARED in ignored[0]
    assert report.count(UNDECLARED) == 1


def test_lambda_x_is_the_runs_lambda_identity_else_each_styles_own_lambda(tmp_path):
    paths = build_tree(tmp_path)
    runs = {"sms": RUNS["sms"], "lambda_1e-4": RUNS["lambda_1e-4"], "lambda_2e-3": RUNS["lambda_2e-3"],
            "dds": RUNS["dds"]}  # dds: not tagged `lambda`, so no λ row
    write_params(tmp_path, runs, {STYLE: {"lambda": 5e-4}, "pixel": {"lambda": 2e-4}})
    inputs = load_inputs(paths)
    assert inputs.styles == [STYLE, "pixel"]
    assert [(value, slot.run) for value, slot in pt.lambda_rows(inputs, STYLE)] == \
        [(1e-4, "lambda_1e-4"), (5e-4, "sms"), (2e-3, "lambda_2e-3")]
    assert [(value, slot.run) for value, slot in pt.lambda_rows(inputs, "pixel")] == \
        [(1e-4, "lambda_1e-4"), (2e-4, "sms"), (2e-3, "lambda_2e-3")]
    table, points = pt.lambda_table(inputs, "clip_style")
    assert [(p["lambda"], p["run"], p["style"]) for p in points] == [
        (1e-4, "lambda_1e-4", STYLE), (5e-4, "sms", STYLE), (2e-3, "lambda_2e-3", STYLE),
        (1e-4, "lambda_1e-4", "pixel"), (2e-4, "sms", "pixel"), (2e-3, "lambda_2e-3", "pixel")]
    assert [p["lpips"] for p in points[:3]] == [LPIPS[run][0] for run in ("lambda_1e-4", "sms", "lambda_2e-3")]
    assert [row[:3] for row in table.rows] == [["1e-4", "lambda_1e-4", STYLE], ["5e-4", "sms", STYLE],
                                               ["2e-3", "lambda_2e-3", STYLE], ["1e-4", "lambda_1e-4", "pixel"],
                                               ["2e-4", "sms", "pixel"], ["2e-3", "lambda_2e-3", "pixel"]]
    assert "watercolor 5e-4, pixel 2e-4" in table.caption

    assert run_report(paths) == 0
    rows = list(csv.DictReader(open(paths["out"] / "lambda_tradeoff.csv")))
    assert list(rows[0]) == ["lambda", "lpips", "style_score", "style", "run", "style_metric"]
    assert [(float(r["lambda"]), r["run"], r["style"]) for r in rows] == [
        (p["lambda"], p["run"], p["style"]) for p in points]


def test_paper_numbers_join_the_suites_rows_by_label(tmp_path):
    paths = build_tree(tmp_path)
    ablation = pt.ablation_table(load_inputs(paths)).to_markdown()
    assert table_row(ablation, "+ PSR")[1] == "abl_sm+psr" and table_row(ablation, "+ PSR")[-2:] == ["0.505", "24.132"]
    assert table_row(ablation, "style matching only")[-2:] == ["0.703", "26.403"]

    runs = copy.deepcopy(RUNS)
    runs["abl_sm+psr"]["tables"]["ablation"] = "+ PSR (relabelled)"  # no paper numbers under this label
    runs["dds"]["tables"]["runtime"] = "DDS (ours)"
    write_params(tmp_path, runs)
    inputs = load_inputs(paths)
    ablation = pt.ablation_table(inputs).to_markdown()
    assert table_row(ablation, "+ PSR (relabelled)")[-2:] == ["", ""]
    assert table_row(ablation, "+ PSR — paper [notes, unverified]", "DIV2K, paper styles")[-2:] == ["0.505", "24.132"]
    runtime = pt.table1_runtime(inputs).to_markdown()
    assert table_row(runtime, "DDS (ours)", "dds")[-1] == ""
    assert table_row(runtime, "DDS — paper [supp Table 1, L40]", "")[-1] == "31.716"
    assert table_row(runtime, "SMS", "sms")[-1] == "87.582"


def string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)}


def test_no_run_name_of_params_yaml_is_written_in_analysis():
    """Whole string literals only: "sms" or 'lambda_' (as in f"lambda_{x}"), not words like lambda_identity."""
    names = list(yaml.safe_load((REPO / "params.yaml").read_text())["runs"])
    assert {"sms", "abl_sm_only", "lambda_1e-4", "id_none", "dds_style_prior"} <= set(names)
    families = Counter(name.split("_")[0] + "_" for name in names if "_" in name)
    forbidden = set(names) | {prefix for prefix, count in families.items() if count > 1}
    assert {"lambda_", "abl_", "id_"} <= forbidden
    found = {path.name: sorted(string_constants(path) & forbidden) for path in (REPO / "analysis").glob("*.py")}
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert string_constants(REPO / "tests" / "analysis" / "report_helpers.py") & forbidden  # the check can fail
