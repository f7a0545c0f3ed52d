"""The feed-forward table (issue 14): runs tagged `feedforward` beside the paper's rows, joined by label;
the paper's methods no run carries (Scenimefy, here also PDS) stay as paper-only rows."""
from __future__ import annotations

import copy

import pytest
from report_helpers import RUNS, STYLE, build_tree, first_cells, run_report, table_row

SOURCE = "paper [feed-forward table, as quoted in issue 14, unverified]"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    runs = copy.deepcopy(RUNS)
    runs["sms"]["tables"]["feedforward"] = "SMS"
    runs["dds"]["tables"]["feedforward"] = "DDS"
    paths = build_tree(tmp_path_factory.mktemp("feedforward"), runs)
    assert run_report(paths) == 0
    return (paths["out"] / "tables" / "feedforward.md").read_text()


def test_our_rows_carry_value_and_interval_beside_the_papers_numbers(table):
    sms = table_row(table, "SMS")
    assert sms[1:4] == ["sms", STYLE, "0.412 [0.39, 0.44]"]
    assert sms[-2:] == ["0.268", "17.079"]
    assert table_row(table, "DDS")[3] == "0.520 [0.50, 0.55]" and table_row(table, "DDS")[-2:] == ["0.321", "18.338"]


def test_methods_no_run_carries_are_paper_only_rows(table):
    rows = first_cells(table)
    assert rows[:2] == ["SMS", "DDS"]
    assert rows[2:] == [f"Scenimefy — {SOURCE}", f"PDS — {SOURCE}"]
    scenimefy = table_row(table, f"Scenimefy — {SOURCE}", "paper styles")
    assert scenimefy[1] == "" and scenimefy[3:7] == [""] * 4 and scenimefy[-2:] == ["0.422", "18.561"]
