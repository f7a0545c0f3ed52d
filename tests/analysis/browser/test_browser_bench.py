"""benchmarks/bench_browser.py end to end on a tiny synthetic report: what it builds and what its tables count."""
from __future__ import annotations

from benchmarks import bench_browser


def test_bench_browser_builds_caches_and_measures_a_tiny_report(tmp_path, chromium):
    paths = bench_browser.build_synthetic(tmp_path, runs=2, styles=2, images=3, size=16)
    built = bench_browser.build_times(paths)
    assert built["made"] == built["thumbnails"] == 2 * 2 * 3 + 3  # every output and content image, once
    weight = bench_browser.page_weight(paths["out"])
    assert weight["page bytes"] == sum((paths["out"] / name).stat().st_size for name in bench_browser.PAGE_FILES)
    opened = bench_browser.open_times(chromium, paths["out"] / "index.html", repeat=1)
    assert opened["ready"] > 0 and opened["fcp"] > 0 and opened["resort"] >= 0  # measured, whatever the speed
    text = bench_browser.tables((2, 2, 3), built, weight, opened)
    assert "| 15 | 2 × 2 × 3 |" in text and f"| {built['thumbnails']}, " in text
    assert len([line for line in text.splitlines() if line.startswith("|")]) == 6  # two tables, one row each
