"""The results browser at scale: a synthetic report of ≥ 5,000 images, built, then opened in headless Chromium.

    python benchmarks/bench_browser.py                         # 10 runs × 5 styles × 100 images (+ 100 content)
    python benchmarks/bench_browser.py --runs 22 --styles 4 --images 100 --size 512 --chromium /usr/bin/chromium

Prints two Markdown tables. Build: seconds to write the browser (Inputs.load included) with every thumbnail
made, again with every thumbnail reused, and again after the report folder was deleted (as DVC does before it
reruns the report stage: thumbnails copied from the cache). Page: its weight (index.html + scripts + style
sheet + data.js; the thumbnails separately) and, opened from file:// (median of --repeat loads), first paint,
first contentful paint, the first grid drawn (``sms-ready`` mark), the load event, thumbnails decoded for
the first view, JS heap, and the time to re-sort the grid's rows by a metric.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.browser import write_browser
from analysis.inputs import Inputs
from sms import hashing

TAGS = ("main", "ablation", "identity", "lambda")
METRICS = {"lpips": "lower", "clip_style": "higher", "ssim": "higher"}
PAGE_FILES = ("index.html", "browser/app.js", "browser/grid.js", "browser/compare.js", "browser/tables.js",
              "browser/style.css", "browser/data.js")


def _png(path: Path, rng: np.random.Generator, size: int) -> None:
    base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)  # a smooth colour field plus grain, like a photo
    field = np.asarray(Image.fromarray(base).resize((size, size), Image.Resampling.BILINEAR), dtype=np.int16)
    pixels = np.clip(field + rng.integers(-12, 13, field.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=1)


def build_synthetic(root: Path, runs: int, styles: int, images: int, size: int, seed: int = 0) -> dict[str, Path]:
    """params.yaml, content, results (PNG + sidecar + manifest per folder) and both metric tables."""
    rng = np.random.default_rng(seed)
    ids = [f"{k + 801:04d}" for k in range(images)]  # DIV2K valid's names
    style_names = [f"style{s}" for s in range(styles)]
    run_names = [f"run{r:02d}" for r in range(runs)]
    content, results, metrics = root / "content", root / "results", root / "metrics"
    for image in ids:
        _png(content / f"{image}.png", rng, size)
    (content / "manifest.json").write_text(json.dumps({"records": [{"id": i, "path": f"{i}.png"} for i in ids]}))
    per_image, aggregate = [], []
    for r, run in enumerate(run_names):
        for style in style_names:
            folder, records = results / run / style, []
            for image in ids:
                _png(folder / f"{image}.png", rng, size)
                seconds = float(rng.uniform(20, 90))
                (folder / f"{image}.json").write_text(json.dumps(
                    {"id": image, "seed": 0, "iterations": 200, "config_digest": f"{r:016x}",
                     "models": {"base": "sd15", "style_lora": f"{r:064x}"}, "timings": {"seconds_total": seconds}}))
                records.append({"id": image, "output": f"{image}.png", "sidecar": f"{image}.json", "style": style,
                                "method": run, "content": str(content / f"{image}.png")})
                per_image.append({"id": image, "method": run, "style": style, "seconds_per_image": seconds,
                                  **{m: float(rng.uniform(0.1, 0.9)) for m in METRICS}})
            (folder / "manifest.json").write_text(json.dumps({"records": records}))
            for metric, direction in METRICS.items():
                values = [row[metric] for row in per_image[-images:]]
                aggregate.append({"method": run, "style": style, "metric": metric, "value": np.mean(values),
                                  "ci_low": np.quantile(values, 0.025), "ci_high": np.quantile(values, 0.975),
                                  "n": images, "direction": direction, "definition_id": f"{metric}/synthetic",
                                  "status": "ok", "reason": ""})
    metrics.mkdir()
    pd.DataFrame(per_image).to_csv(metrics / "per_image.csv", index=False)
    pd.DataFrame(aggregate).to_csv(metrics / "aggregate.csv", index=False)
    declared = {run: {"method": "sms", "tables": {TAGS[r % len(TAGS)]: run.upper()}} for r, run in enumerate(run_names)}
    profile = {"label": "synthetic benchmark report: random images", "styles": {s: {} for s in style_names}}
    (root / "params.yaml").write_text(json.dumps({"profile": "bench", "profiles": {"bench": profile},
                                                  "runs": declared}))
    return {"metrics": metrics, "results": results, "content": content, "styles": root / "styles",
            "params": root / "params.yaml", "out": root / "reports" / "paper", "store": root / "thumb-store"}


def build(paths: dict[str, Path]) -> tuple[float, object]:
    hashing._memory.clear()  # each build as a fresh `sms report` process: every image's sha256 read again
    start = time.perf_counter()
    inputs = Inputs.load(paths["metrics"], paths["results"], paths["content"], paths["styles"], paths["params"])
    browser = write_browser(inputs, paths["out"], store=paths["store"])
    return time.perf_counter() - start, browser


def build_times(paths: dict[str, Path]) -> dict:
    cold, browser = build(paths)
    warm, again = build(paths)
    shutil.rmtree(paths["out"])
    copied, fresh = build(paths)
    assert (again.thumbs.made, fresh.thumbs.made) == (0, 0), "thumbnails redrawn: the cache did not hold"
    thumbs = list((paths["out"] / "thumbs").iterdir())
    return {"thumbnails": len(thumbs), "thumbnail bytes": sum(p.stat().st_size for p in thumbs),
            "build s": cold, "rebuild s (reused)": warm, "rebuild s (folder deleted)": copied,
            "made": browser.thumbs.made}


PROBE = """() => {
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
    const ready = performance.getEntriesByName('sms-ready')[0];
    const navigation = performance.getEntriesByType('navigation')[0];
    const thumbs = [...document.querySelectorAll('#grid img')].filter(i => i.complete && i.naturalWidth).length;
    return {fp: paint['first-paint'], fcp: paint['first-contentful-paint'], ready: ready && ready.startTime,
            load: navigation && navigation.loadEventEnd, thumbs: thumbs,
            heap: performance.memory ? performance.memory.usedJSHeapSize : null}; }"""
RESORT = """() => {
    const select = document.getElementById('grid-metric');
    const start = performance.now();
    select.value = 'lpips';
    select.dispatchEvent(new Event('change'));
    return performance.now() - start; }"""


def open_times(browser, page_path: Path, repeat: int) -> dict:
    """Median over ``repeat`` fresh loads (new context: no cache) of what PROBE and RESORT measure."""
    samples = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_selector("body[data-ready]")
        page.wait_for_timeout(300)  # let lazy thumbnails of the first view be requested
        sample = page.evaluate(PROBE)
        sample["resort"] = page.evaluate(RESORT)
        samples.append(sample)
        context.close()
    return {key: statistics.median(s[key] for s in samples) if samples[0][key] is not None else None
            for key in samples[0]}


def page_weight(out: Path) -> dict:
    sizes = {name: (out / name).stat().st_size for name in PAGE_FILES}
    return {"page bytes": sum(sizes.values()), "data.js bytes": sizes["browser/data.js"]}


BUILD_COLUMNS = ("images (outputs + content)", "runs × styles × images", "build s (thumbnails made)",
                 "rebuild s (reused)", "rebuild s (report folder deleted)")
PAGE_COLUMNS = ("page KB (HTML + JS + CSS + data.js)", "data.js KB", "thumbnails (count, MB)", "first paint ms",
                "first contentful paint ms", "first grid drawn ms", "load event ms",
                "thumbnails decoded at first view", "JS heap MB", "re-sort rows ms")


def _markdown(columns: tuple[str, ...], row: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|",
            "| " + " | ".join(row) + " |"]


def _number(value, scale: float = 1.0, digits: int = 0) -> str:
    return "—" if value is None else f"{value / scale:.{digits}f}"


def tables(shape: tuple[int, int, int], built: dict, weight: dict, opened: dict) -> str:
    runs, styles, images = shape
    build_row = [str(runs * styles * images + images), f"{runs} × {styles} × {images}",
                 *(_number(built[key], digits=1) for key in ("build s", "rebuild s (reused)",
                                                             "rebuild s (folder deleted)"))]
    page_row = [_number(weight["page bytes"], 1024), _number(weight["data.js bytes"], 1024),
                f"{built['thumbnails']}, {_number(built['thumbnail bytes'], 2**20, 1)}",
                *(_number(opened[key]) for key in ("fp", "fcp", "ready", "load", "thumbs")),
                _number(opened["heap"], 2**20, 1), _number(opened["resort"], digits=1)]
    return "\n".join([*_markdown(BUILD_COLUMNS, build_row), "", *_markdown(PAGE_COLUMNS, page_row)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--styles", type=int, default=5)
    parser.add_argument("--images", type=int, default=100, help="content images (each run stylises all)")
    parser.add_argument("--size", type=int, default=64, help="side of the synthetic PNGs in px")
    parser.add_argument("--repeat", type=int, default=3, help="page loads to take the median of")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--keep", type=Path, help="build the report here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-browser-"))
    try:
        paths = build_synthetic(root, args.runs, args.styles, args.images, args.size)
        built = build_times(paths)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium)
            opened = open_times(browser, paths["out"] / "index.html", args.repeat)
            browser.close()
        print(tables((args.runs, args.styles, args.images), built, page_weight(paths["out"]), opened))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
