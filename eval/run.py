"""Evaluate results folders: every metric per (method, style) group → per-image rows and an aggregate.

    python -m eval.run RESULTS_DIR [RESULTS_DIR ...] --out DIR [--style-set NAME=DIR] [--weights-json FILE]
        [--metrics lpips,clip_score,...] [--bootstrap 1000] [--set-bootstrap 100] [--seed 0]

Writes ``per_image.csv`` (and ``per_image.parquet`` when pandas has a parquet engine), ``aggregate.csv``
and ``metrics.json`` for ``dvc metrics show``: ``{style: {metric: value}}`` for one run, else
``{run: {style: {metric: value}}}``. A metric that
cannot run (weights absent, missing pairing) is recorded as skipped with its reason; the rest go on.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import traceback
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from eval.bootstrap import group_rng, mean_ci, statistic_ci
from eval.manifest import attach_style_sets, style_set_images
from eval.registry import EvalMetric, SetMetric, load_all
from eval.weights import MetricUnavailable, MetricWeights
from sms.results import SAMPLE_COLUMNS, Sample, read_results

log = logging.getLogger("eval.run")
AGGREGATE_COLUMNS = [
    "method", "style", "metric", "value", "ci_low", "ci_high", "n", "direction", "definition_id", "status", "reason",
]


def _groups(samples: Sequence[Sample]) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault((sample.method or "", sample.style or ""), []).append(index)
    return dict(sorted(groups.items()))


def _row(cls, method, style, **fields) -> dict:
    row = {"method": method, "style": style, "metric": cls.registry_name, "value": math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "n": 0, "direction": cls.direction.value, "definition_id": "", "status": "ok",
           "reason": ""}
    row.update(fields)
    return row


def _usable_style_sets(style_sets: Mapping[str, str | Path]) -> tuple[dict, dict]:
    usable, problems = {}, {}
    for name, folder in style_sets.items():
        try:
            style_set_images(folder)
            usable[name] = folder
        except (FileNotFoundError, ValueError) as exc:
            log.warning("style set %s unusable: %s", name, exc)
            problems[name] = str(exc)
    return usable, problems


def _set_interval(metric: SetMetric, set_bootstrap: int, rng: np.random.Generator) -> tuple[float, float, str]:
    try:
        return (*statistic_ci(metric.value_at, metric.set_sizes(), set_bootstrap, rng), "")
    except MetricUnavailable as exc:  # FID∞ of a half-sample needs 5,000 images: below 9,999 no interval
        return math.nan, math.nan, f"no interval: {exc}"


def _evaluate_group(metric: EvalMetric, members: list[Sample], key: tuple[str, str], *, batch_size: int,
                    bootstrap: int, set_bootstrap: int, seed: int, style_problem: str | None = None):
    cls, (method, style) = type(metric), key
    reason = metric.missing(members)
    if reason:
        if style_problem and "style" in reason:
            reason = f"{reason}: {style_problem}"
        return _row(cls, method, style, status="skipped", reason=reason), None
    metric.reset()
    try:
        for start in range(0, len(members), batch_size):
            metric.update(members[start:start + batch_size])
        rng = group_rng(seed, cls.registry_name, method, style)
        if metric.per_image:
            values = metric.compute().numpy()
            mean, low, high, n = mean_ci(values, bootstrap, rng)
            row = _row(cls, method, style, value=mean, ci_low=low, ci_high=high, n=n)
        else:
            value = float(metric.compute())
            low, high, note = _set_interval(metric, set_bootstrap, rng)
            values, row = None, _row(cls, method, style, value=value, ci_low=low, ci_high=high, n=metric.n_items(),
                                     reason=note)
        row["definition_id"] = metric.definition_id()
        return row, values
    except MetricUnavailable as exc:
        return _row(cls, method, style, status="skipped", reason=str(exc)), None
    except Exception as exc:  # one failing metric must not stop the others
        log.error("%s on %s/%s failed:\n%s", cls.registry_name, method, style, traceback.format_exc())
        return _row(cls, method, style, status="error", reason=f"{type(exc).__name__}: {exc}"), None


def evaluate(
    results_dirs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    style_sets: Mapping[str, str | Path] | None = None,
    weights: MetricWeights | None = None,
    metrics: Sequence[str] | None = None,
    bootstrap: int = 1000,
    set_bootstrap: int = 100,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    options: Mapping[str, Mapping] | None = None,
) -> pd.DataFrame:
    """Run the metrics over the results folders; writes the three output files and returns the aggregate."""
    registry = load_all()
    names = list(metrics) if metrics else registry.names()
    classes = [registry.get(name) for name in names]
    weights = weights or MetricWeights()
    options = options or {}
    usable, style_problems = _usable_style_sets(style_sets or {})
    samples = attach_style_sets([s for d in results_dirs for s in read_results(d)], usable)
    groups = _groups(samples)
    per_image = pd.DataFrame([(str(s.results_dir), s.id, s.method or "", s.style or "", str(s.output),
                               str(s.content) if s.content else "", s.prompt or "") for s in samples],
                             columns=list(SAMPLE_COLUMNS))
    rows = []
    for cls in classes:
        name = cls.registry_name
        if cls.per_image:
            per_image[name] = np.nan
        try:
            metric = cls(weights, device=device, **options.get(name, {}))
        except MetricUnavailable as exc:
            log.warning("skipping %s: %s", name, exc)
            rows += [_row(cls, m, s, status="skipped", reason=str(exc)) for m, s in groups]
            continue
        for key, indices in groups.items():
            row, values = _evaluate_group(
                metric, [samples[i] for i in indices], key,
                batch_size=batch_size, bootstrap=bootstrap, set_bootstrap=set_bootstrap, seed=seed,
                style_problem=style_problems.get(key[1]),
            )
            rows.append(row)
            if values is not None:
                per_image.loc[indices, name] = values
        del metric
    aggregate = pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)
    _write(Path(out_dir), per_image, aggregate)
    return aggregate


def _write(out_dir: Path, per_image: pd.DataFrame, aggregate: pd.DataFrame) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    per_image.to_csv(out_dir / "per_image.csv", index=False)
    try:
        per_image.to_parquet(out_dir / "per_image.parquet", index=False)
    except ImportError:
        log.info("no parquet engine (pyarrow) installed: per_image.parquet not written")
    aggregate.to_csv(out_dir / "aggregate.csv", index=False)
    nested: dict[str, dict[str, dict[str, float]]] = {}
    for r in aggregate.itertuples():
        if r.status == "ok" and math.isfinite(r.value):
            nested.setdefault(r.method, {}).setdefault(r.style, {})[r.metric] = float(f"{r.value:.6g}")
    # One run (the pipeline's metrics@RUN stages): style → metric, so `dvc metrics show` prints one row per run.
    payload = next(iter(nested.values())) if len(nested) == 1 else nested
    (out_dir / "metrics.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key, value


def _option(text: str) -> tuple[str, str, object]:
    key, value = _key_value(text)
    if "." not in key:
        raise argparse.ArgumentTypeError(f"expected METRIC.OPTION=VALUE, got {text!r}")
    metric, option = key.split(".", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return metric, option, parsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dirs", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--style-set", action="append", type=_key_value, default=[], metavar="NAME=DIR")
    parser.add_argument("--weights-json", type=Path)
    parser.add_argument("--metrics", help="comma-separated registry names (default: all)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for per-image metric means")
    parser.add_argument("--set-bootstrap", type=int, default=100, help="resamples for set metrics (FID, ArtFID)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--option", action="append", type=_option, default=[], metavar="METRIC.KEY=VALUE",
                        help="metric constructor option, e.g. fid_art.resize=512 or artfid.infinity=true")
    parser.add_argument("--allow-download", action="store_true", help="let LPIPS/ArtFID fetch their weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    weights = MetricWeights.from_json(args.weights_json) if args.weights_json else MetricWeights()
    weights.allow_download = weights.allow_download or args.allow_download
    options: dict[str, dict] = {}
    for metric, option, value in args.option:
        options.setdefault(metric, {})[option] = value
    aggregate = evaluate(
        args.results_dirs, args.out, style_sets=dict(args.style_set), weights=weights,
        metrics=args.metrics.split(",") if args.metrics else None, bootstrap=args.bootstrap,
        set_bootstrap=args.set_bootstrap, seed=args.seed, device=args.device, batch_size=args.batch_size,
        options=options,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(aggregate[["method", "style", "metric", "value", "ci_low", "ci_high", "n", "status", "reason"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
