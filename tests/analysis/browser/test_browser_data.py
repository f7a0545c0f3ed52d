"""The results browser's data (equal to the CSVs, results and params.yaml it is read from) and its thumbnail
cache (made once per image content, reused, redrawn when the image changes), without a browser."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image
from report_helpers import IDS, LPIPS, RUNS, STYLE, UNDECLARED, build_tree, load_inputs, noisy, run_report

from analysis.browser import write_browser
from analysis.browser.thumbs import Thumbnails


def read_data(out: Path) -> dict:
    text = (out / "browser" / "data.js").read_text()
    prefix = "window.SMS_DATA = "
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix):-2])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = build_tree(tmp_path_factory.mktemp("data"))
    assert run_report(paths) == 0
    return paths, read_data(paths["out"])


def test_per_image_and_aggregate_values_equal_the_csvs(built):
    paths, data = built
    names = data["metrics"]["names"]
    assert {"lpips", "seconds_per_image", "seconds_per_iter"} <= set(names) and "id" not in names
    for row in csv.DictReader((paths["metrics"] / "per_image.csv").read_text().splitlines()):
        values = data["metrics"]["values"].get(row["style"], {}).get(row["method"], {}).get(row["id"])
        if row["method"] == UNDECLARED:
            assert values is None  # a run params.yaml does not declare is not shown
            continue
        assert values[names.index("lpips")] == pytest.approx(float(row["lpips"]), rel=1e-6)
        assert values[names.index("seconds_per_image")] == pytest.approx(float(row["seconds_per_image"]))
    table = next(t for t in data["tables"] if t["name"] == "aggregate")
    keys = [column[0] for column in table["columns"]]
    rows = {row[0][0]: row for row in table["rows"]}
    assert set(rows) == set(LPIPS) - {UNDECLARED}
    for row in csv.DictReader((paths["metrics"] / "aggregate.csv").read_text().splitlines()):
        if row["method"] == UNDECLARED:
            continue
        text, value = rows[row["method"]][keys.index(row["metric"])]
        if row["status"] == "ok":
            assert value == pytest.approx(float(row["value"]))
        else:
            assert value is None and text.startswith("— [")
    assert data["metrics"]["direction"]["lpips"] == "lower" and data["metrics"]["direction"]["ssim"] == "higher"
    assert [t["name"] for t in data["tables"]][:3] == ["aggregate", "table1_runtime", "main"]


def test_images_link_their_output_sidecar_and_content_and_the_header_their_provenance(built):
    paths, data = built
    out = paths["out"]
    assert data["contentOrder"] == IDS and set(data["content"]) == set(IDS)
    assert (out / unquote(data["content"]["c1"][1])).resolve() == (paths["content"] / "c1.png").resolve()
    runs = data["images"][STYLE]
    assert set(runs) == set(LPIPS) - {UNDECLARED}
    thumb, full, sidecar, seed, seconds = runs["sms"]["c2"]
    assert (out / unquote(full)).resolve() == (paths["results"] / "sms" / STYLE / "c2.png").resolve()
    assert (out / unquote(sidecar)).resolve() == (paths["results"] / "sms" / STYLE / "c2.json").resolve()
    assert (out / unquote(thumb)).is_file() and seconds == 6.0 and seed is None
    assert not os.path.isabs(unquote(full))  # relative: the page works from any folder or static host
    assert data["profile"] == "demo" and data["standin"] == ["clip_style"] and data["standinRuns"] == []
    assert list(data["runs"]) == list(RUNS) and data["runs"]["sds_style_prior"]["label"] == "SDS + style prior"
    assert data["runs"]["lambda_0"]["label"] == "lambda_0"  # "λ sweep" is every λ run's label: not unique


def test_grid_groups_are_the_reports_grids_then_other_tags_then_all_runs(built):
    _, data = built
    groups = {g["key"]: g for g in data["groups"]}
    # the rapsd tag names the Methods grid's runs again: a duplicate column set, left out
    assert [g["key"] for g in data["groups"]] == ["methods", "style_prior", "ablation", "identity", "lambda",
                                                  "runtime", "all"]
    assert groups["methods"]["title"] == "Methods"
    assert [label for label, _ in groups["methods"]["columns"][STYLE]] == ["SMS", "VSD", "SDS", "DDS", "PDS"]
    assert [run for _, run in groups["style_prior"]["columns"][STYLE]] == ["sds", "sds_style_prior"]
    assert [label for label, _ in groups["lambda"]["columns"][STYLE]] == [
        "λ = 0", "λ = 1e-4", "λ = 2e-4", "λ = 5e-4", "λ = 1e-3", "λ = 2e-3"]
    assert [run for _, run in groups["all"]["columns"][STYLE]] == list(RUNS)


def test_figures_are_the_reports_rapsd_and_lambda_pngs(built):
    paths, data = built
    assert [Path(unquote(f["src"])).name for f in data["figures"]] == ["lambda_tradeoff.png", f"rapsd_{STYLE}.png"]
    assert all((paths["out"] / unquote(f["src"])).is_file() for f in data["figures"])
    assert data["figures"][1]["title"] == f"RAPSD — {STYLE}"


def test_thumbnails_are_made_once_reused_and_redrawn_when_an_image_changes(tmp_path):
    images = []
    for k in range(3):
        path = tmp_path / "images" / f"i{k}.png"
        path.parent.mkdir(exist_ok=True)
        noisy((80 * k, 120, 40), k).resize((64, 48)).save(path)
        images.append(path)
    folder, store = tmp_path / "thumbs", tmp_path / "store"
    first = Thumbnails(folder, px=16, store=store)
    made = [first(path) for path in images]
    assert (first.made, first.reused) == (3, 0) and len(set(made)) == 3
    with Image.open(made[0]) as thumb, Image.open(images[0]) as image:
        assert thumb.size == (16, 12)  # fits 16×16, aspect kept
        means = [np.asarray(i.convert("RGB"), dtype=float).mean(axis=(0, 1)) for i in (thumb, image)]
    assert np.abs(means[0] - means[1]).max() < 6
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    again = Thumbnails(folder, px=16, store=store)
    assert [again(path) for path in images] == made and (again.made, again.reused) == (0, 3)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing rewritten

    noisy((255, 0, 0), 9).save(images[1])
    changed = Thumbnails(folder, px=16, store=store)
    redrawn = [changed(path) for path in images]
    assert (changed.made, changed.reused) == (1, 2) and redrawn[1] != made[1]
    assert changed.prune() == 1 and not made[1].exists() and redrawn[1].exists()

    wiped = tmp_path / "wiped"  # the report folder deleted (as DVC does before a rerun): copied, not redrawn
    fresh = Thumbnails(wiped, px=16, store=store)
    assert [fresh(path).name for path in images] == [p.name for p in redrawn]
    assert (fresh.made, fresh.copied) == (0, 3)


def test_an_unreadable_image_has_no_thumbnail_and_is_reported(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    thumbs = Thumbnails(tmp_path / "thumbs", store=None)
    assert thumbs(broken) is None and thumbs(tmp_path / "absent.png") is None
    assert len(thumbs.failed) == 2 and "broken.png: no thumbnail" in thumbs.failed[0]
    assert thumbs.prune() == 0


def test_browser_without_the_report_groups_runs_by_their_tags(tmp_path):
    paths = build_tree(tmp_path)
    browser = write_browser(load_inputs(paths), paths["out"], store=tmp_path / "store")
    data = read_data(paths["out"])
    assert browser.page.read_text().count("browser/data.js") == 1
    # runtime tags the same runs as main: left out
    assert [g["key"] for g in data["groups"]] == ["main", "rapsd", "ablation", "identity", "lambda", "all"]
    assert [t["name"] for t in data["tables"]] == ["aggregate"]
    assert browser.thumbs.made == len(IDS) * (1 + len(set(LPIPS) - {UNDECLARED}))


def test_runs_stylised_with_a_random_stand_in_model_are_named():
    from analysis.browser.collect import stand_in_runs

    provenance = {"oil": {"a": {"models": {"base": "tiny"}}, "b": {"models": {"base": "/w/sd15.safetensors"}}},
                  "ink": {"c": {"models": {"base": "sd15-random:1"}}, "d": {}}}
    assert stand_in_runs(provenance) == ["a", "c"]
