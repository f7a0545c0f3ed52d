"""The results browser in headless Chromium, opened from file:// as a user opens it: no console error, no
request outside the file system, every thumbnail decodes, sorting follows the CSVs, compare shows the right files."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image
from report_helpers import IDS, LABEL, LPIPS, RUNS, STYLE, build_tree, run_report

SKIPPED = "id_none"  # its LPIPS row is made "skipped": a missing value, sorted last both ways


def _rewrite(path: Path, change) -> None:
    rows = list(csv.DictReader(path.read_text().splitlines()))
    for row in rows:
        change(row)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    paths = build_tree(tmp_path_factory.mktemp("browser"))
    rng = np.random.default_rng(17)  # a draw where both sorts tested below differ from content order

    def spread(row):  # distinct per-image LPIPS, so rows have an order to sort by
        row["lpips"] = f"{float(row['lpips']) + rng.uniform(-0.1, 0.1):.4f}"

    def skip(row):
        if row["method"] == SKIPPED and row["metric"] == "lpips":
            row.update(value="", ci_low="", ci_high="", status="skipped", reason="no LPIPS weights")

    _rewrite(paths["metrics"] / "per_image.csv", spread)
    _rewrite(paths["metrics"] / "aggregate.csv", skip)
    assert run_report(paths) == 0
    return paths


def per_image_lpips(paths) -> dict[tuple[str, str], float]:
    rows = csv.DictReader((paths["metrics"] / "per_image.csv").read_text().splitlines())
    return {(row["method"], row["id"]): float(row["lpips"]) for row in rows}


def local(paths, src: str) -> Path:
    """The file a relative URL of the page points at."""
    return (paths["out"] / unquote(src)).resolve()


def test_page_opens_offline_with_no_errors_and_says_what_the_numbers_are(report, open_page):
    watched = open_page(report["out"] / "index.html")
    assert watched.errors == []
    assert watched.requests and all(url.startswith(("file://", "data:")) for url in watched.requests)
    header = watched.page.inner_text("header")
    assert "Profile demo" in header and LABEL in header
    assert "random stand-in weights (clip_style)" in header and "test the machinery, not any paper" in header


def test_every_thumbnail_of_the_report_decodes(report, open_page):
    page = open_page(report["out"] / "index.html").page
    page.select_option("#grid-group", "all")
    decoded = page.evaluate("""async () => {
        const images = [...document.querySelectorAll('#grid img')];
        images.forEach(image => { image.loading = 'eager'; });
        await Promise.all(images.map(image => image.decode().catch(() => null)));
        return images.map(image => [image.getAttribute('src'), image.naturalWidth]); }""")
    declared_with_images = [run for run in LPIPS if run in RUNS]
    assert len(decoded) == len(IDS) * (1 + len(declared_with_images))  # content column + every run's outputs
    assert all(width > 0 for _, width in decoded), [src for src, width in decoded if not width]
    thumbs = {local(report, src) for src, _ in decoded}
    assert thumbs == {path.resolve() for path in (report["out"] / "thumbs").iterdir()}


def test_sorting_a_metric_column_follows_aggregate_csv(report, open_page):
    rows = [r for r in csv.DictReader((report["metrics"] / "aggregate.csv").read_text().splitlines())
            if r["metric"] == "lpips" and r["method"] in RUNS and r["style"] == STYLE]
    valued = sorted((float(r["value"]), r["method"]) for r in rows if r["status"] == "ok")
    missing = [r["method"] for r in rows if r["status"] != "ok"]
    assert missing == [SKIPPED]
    page = open_page(report["out"] / "index.html").page
    page.click('#tabs [data-view="tables"]')
    header = '#table-aggregate th[data-key="lpips"] button'
    runs = "() => [...document.querySelectorAll('#table-aggregate tbody tr')].map(tr => tr.cells[0].textContent)"
    page.click(header)
    assert page.evaluate(runs) == [run for _, run in valued] + missing
    page.click(header)
    assert page.evaluate(runs) == [run for _, run in reversed(valued)] + missing
    shown = page.inner_text('#table-aggregate tbody tr:first-child td:nth-child(4)')
    assert shown == "0.710 [0.69, 0.74]"  # sds: highest LPIPS, value [CI] as in the report's tables


def test_grid_rows_sort_by_a_per_image_metric_worst_first(report, open_page):
    lpips = per_image_lpips(report)
    page = open_page(report["out"] / "index.html").page
    order = "() => [...document.querySelectorAll('#grid tbody tr')].map(tr => tr.dataset.id)"
    assert page.evaluate(order) == IDS
    worst_sds = sorted(IDS, key=lambda i: -lpips["sds", i])  # lower is better: worst = highest
    shown = ("sms", "sds", "dds")  # the Methods grid's runs that have images (vsd and pds have none)
    best_mean = sorted(IDS, key=lambda i: np.mean([lpips[run, i] for run in shown]))
    assert IDS != worst_sds != best_mean != IDS
    page.select_option("#grid-metric", "lpips")
    page.select_option("#grid-by", "sds")
    assert page.evaluate(order) == worst_sds
    page.select_option("#grid-by", "mean")
    page.select_option("#grid-order", "best")
    assert page.evaluate(order) == best_mean
    hover = page.get_attribute(f'#grid tr[data-id="{IDS[0]}"] td[data-run="sms"] a', "title")
    assert f"lpips ↓: {lpips['sms', IDS[0]]:.4g}" in hover


def test_compare_view_shows_the_chosen_images_their_metrics_and_a_slider(report, open_page):
    lpips = per_image_lpips(report)
    page = open_page(report["out"] / "index.html").page
    page.click('#grid tr[data-id="c1"] button.compare')
    assert page.input_value("#compare-id") == "c1"
    cards = page.evaluate("""() => [...document.querySelectorAll('#compare-view .card')].map(card =>
        [card.dataset.run || '', card.querySelector('img.full').getAttribute('src'),
         (card.querySelector('a.sidecar') || {}).href || ''])""")
    assert [run for run, _, _ in cards] == ["", "sms", "sds", "dds"]
    assert local(report, cards[0][1]) == (report["content"] / "c1.png").resolve()
    for run, src, sidecar in cards[1:]:
        assert local(report, src) == (report["results"] / run / STYLE / "c1.png").resolve()
        assert sidecar.endswith(f"/results/{run}/{STYLE}/c1.json") and local(report, src).with_suffix(".json").is_file()
    for run in ("sms", "sds", "dds"):
        shown = page.inner_text(f'#compare-metrics tr[data-metric="lpips"] td[data-run="{run}"]')
        assert math.isclose(float(shown), lpips[run, "c1"], rel_tol=5e-4)
    before = page.get_attribute("#slider img.before", "src")
    after = page.get_attribute("#slider img.after", "src")
    assert local(report, before) == (report["content"] / "c1.png").resolve()
    assert local(report, after) == (report["results"] / "sms" / STYLE / "c1.png").resolve()
    page.click("#compare-view button:has-text('▶')")
    assert page.input_value("#compare-id") == "c2"
    src = page.get_attribute('#compare-view .card[data-run="dds"] img.full', "src")
    assert local(report, src) == (report["results"] / "dds" / STYLE / "c2.png").resolve()


def test_figures_view_embeds_the_rapsd_and_lambda_figures_and_the_runtime_table(report, open_page):
    watched = open_page(report["out"] / "index.html")
    watched.page.click('#tabs [data-view="figures"]')
    figures = watched.page.evaluate("""async () => {
        const images = [...document.querySelectorAll('#figures-view img')];
        images.forEach(image => { image.loading = 'eager'; });
        await Promise.all(images.map(image => image.decode().catch(() => null)));
        return images.map(image => [image.getAttribute('src'), image.naturalWidth]); }""")
    assert {Path(unquote(src)).name for src, _ in figures} == {f"rapsd_{STYLE}.png", "lambda_tradeoff.png"}
    assert all(width > 0 for _, width in figures)
    assert "Table 1 — cost per method" in watched.page.inner_text("#figures-view")
    assert watched.errors == []


def test_screenshot_of_the_grid_is_not_blank(report, open_page):
    page = open_page(report["out"] / "index.html").page
    page.evaluate("""async () => {
        const images = [...document.querySelectorAll('#grid img')];
        await Promise.all(images.map(image => image.decode().catch(() => null))); }""")
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
    assert shot.shape[:2] == (900, 1400)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 500  # text, thumbnails (noisy images), controls
    assert shot.std() > 20


def test_a_report_without_metrics_or_results_opens_without_errors_and_says_what_is_missing(tmp_path, open_page):
    paths = build_tree(tmp_path)
    for name in ("aggregate.csv", "per_image.csv"):
        (paths["metrics"] / name).unlink()
    paths["results"] = tmp_path / "nowhere"
    assert run_report(paths) == 0
    watched = open_page(paths["out"] / "index.html")
    assert "aggregate.csv not found" in watched.page.text_content("#problems")  # folded: text, not shown
    assert watched.page.locator("#grid td.missing").count() == len(IDS) * 5  # Methods: 5 runs, no image yet
    for view in ("compare", "tables", "figures"):
        watched.page.click(f'#tabs [data-view="{view}"]')
    assert watched.errors == []
