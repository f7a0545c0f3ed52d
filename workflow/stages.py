"""The pipeline's stages, each one function of the validated params (``dvc.yaml`` calls them via ``sms``).

    check     → build/locks/         (validates the profile; sha256 of every weight file it uses)
    stage     → data/staged/         (content + style reference sets, hashed manifests)
    prepare   → data/prepared/       (centre-crop/resize)
    stylize   → results/RUN/STYLE/   (one stage per declared run)
    evaluate  → reports/metrics/     (declared runs only; per-image and aggregate tables)
    metrics   → reports/metrics/runs/RUN.json  (one run's numbers for `dvc metrics show`)
    report    → reports/paper/       (tables, figures, report.md)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sms.outputs import atomic_write_json
from sms.weights import reference_digest
from workflow.check import check_profile
from workflow.errors import UserError
from workflow.params import Params

STAGED = Path("data/staged")
PREPARED = Path("data/prepared/content")
RESULTS = Path("results")
METRICS = Path("reports/metrics")
REPORT = Path("reports/paper")
LOCKS = Path("build/locks")   # sha256 of the weight files: stylize.json (models, LoRAs), metrics.json
TRAIN_CONTENT = STAGED / "train_content"       # the feed-forward generators' training images
STANDIN_WEIGHTS = STAGED / "metric_weights"   # random stand-in backbones (demo): every metric runs, labelled


def require_valid(params: Params, runs: list[str] | None = None) -> None:
    problems = check_profile(params, runs)
    if problems:
        listed = "\n  - ".join(problems)
        raise UserError(f"profile {params.profile_name!r} of {params.path} has {len(problems)} problem(s):\n"
                        f"  - {listed}\nFix them (paths, names, files) and rerun; `sms check` lists them.")


def check(params: Params, locks: Path | None = LOCKS) -> dict[str, str | None]:
    """Validate everything; write the weights' identities, which the stylise and metrics stages depend on,
    so that replacing a checkpoint, LoRA or metric backbone in place re-runs exactly the stages using it."""
    require_valid(params)
    stylize = {label: reference_digest(ref) for label, ref in params.weight_references().items()}
    metrics = {key: reference_digest(str(path)) for key, path in metric_weight_files(params).items()}
    if locks is not None:
        atomic_write_json(locks / "stylize.json", {"profile": params.profile_name, "sha256": stylize})
        atomic_write_json(locks / "metrics.json", {"profile": params.profile_name, "sha256": metrics})
    return {**stylize, **metrics}


def metric_weight_files(params: Params) -> dict[str, Path]:
    """The metric backbones' files, named sources (a package's file) resolved; an upgrade re-runs `evaluate`."""
    from eval.weights import PACKAGED_FILES, packaged_file

    found = {}
    for key, value in (params.metrics.get("weights") or {}).items():
        path = packaged_file(value) if isinstance(value, str) and value in PACKAGED_FILES else value
        if isinstance(path, (str, Path)) and Path(path).is_file():
            found[key] = Path(path)
    return found


def stage(params: Params) -> None:
    profile = params.profile
    STANDIN_WEIGHTS.mkdir(parents=True, exist_ok=True)  # the metrics stages depend on it in every profile
    if params.metrics.get("standin_weights"):
        from eval.standin import write_standin_weights

        write_standin_weights(STANDIN_WEIGHTS, seed=params.seed)
    stage_content(profile["content"], STAGED / "content")
    TRAIN_CONTENT.mkdir(parents=True, exist_ok=True)    # the stylise stages depend on it in every profile
    if params.generator:
        stage_content(params.generator["train_content"], TRAIN_CONTENT)
    for name, style in profile["styles"].items():
        if style.get("style_set"):
            from data.style_set import stage_style_set

            stage_style_set(name, Path(style["style_set"]), STAGED / "styles" / name)
        else:
            from data.demo import materialise_demo_style

            materialise_demo_style(STAGED / "styles" / name, style.get("demo_set", "painted"))


def stage_content(content: dict, out: Path) -> None:
    """A content declaration (demo, div2k or folder) staged into ``out`` with its hashed manifest."""
    if content["kind"] == "demo":
        from data.demo import materialise_demo_content

        materialise_demo_content(out)
    elif content["kind"] == "div2k":
        from data.div2k import SPLITS, stage_div2k

        stage_div2k(out, SPLITS[content.get("split", "valid")], zip_path=_path(content.get("zip")),
                    folder=_path(content.get("folder")), accepted_sha256=content.get("sha256"))
    else:
        from data.style_set import stage_style_set

        stage_style_set(out.name, Path(content["path"]), out)


def staged_images(folder: Path, limit: int | None = None) -> list[Path]:
    """The images a staged manifest lists (data.prepare's reader; unreadable files were left out at staging)."""
    from data.prepare import read_source_set

    if not (folder / "manifest.json").is_file():
        raise UserError(f"{folder / 'manifest.json'} not found: run the `stage` stage first (`sms stage`).")
    return [image.path for image in read_source_set(folder).images][:limit]


def prepared_records() -> list[dict]:
    """The prepared content's manifest records (``path`` relative to data/prepared/content, ``caption``)."""
    manifest = PREPARED / "manifest.json"
    if not manifest.is_file():
        raise UserError(f"{manifest} not found: run the `prepare` stage first (`dvc repro prepare` or `sms prepare`).")
    return json.loads(manifest.read_text())["records"]


def prepare(params: Params) -> None:
    from data.prepare import prepare as prepare_images

    content = params.profile["content"]
    prepare_images(STAGED / "content", PREPARED, content["size"], limit=content.get("limit"))


def stylize(params: Params, run_name: str, shard: str | None = None, progress: bool = True,
            executor: dict | None = None, plugins: list[str] = ()) -> int:
    """Every style of the profile for one run; finishes what it can, then exits 1 if any image failed.
    ``executor``: settings given on the command line, over the profile's `executor:` section."""
    from workflow.executor import StylizeJob, executor_options, stylize_jobs

    params.run(run_name)
    options = executor_options(params.executor, **(executor or {}))
    require_valid(params, [run_name])
    records = prepared_records()
    paths = [PREPARED / record["path"] for record in records]
    captions = {str(PREPARED / r["path"]): r.get("caption", "") for r in records}
    jobs = [StylizeJob(paths, params.run_config(run_name, style_name), RESULTS / run_name / style_name,
                       style_name=style_name, run_name=run_name, captions=captions, shard=shard)
            for style_name in params.styles]
    return run_outcome(run_name, zip(params.styles, stylize_jobs(jobs, options, progress=progress, plugins=plugins)))


def run_outcome(run_name: str, reports) -> int:
    """Print each (style, RunReport) as it arrives, then every failure; 1 if any image failed, else 0."""
    failed = {}
    for style_name, report in reports:
        failed.update({f"{style_name}/{path}": reason for path, reason in report.failed.items()})
        print(f"{run_name}/{style_name}: wrote {len(report.written)}, kept {len(report.skipped_finished)} finished, "
              f"failed {len(report.failed)}")
    if failed:
        listed = "\n".join(f"  {where}: {reason}" for where, reason in sorted(failed.items()))
        print(f"{run_name}: {len(failed)} image(s) failed (finished ones are kept; rerunning retries only the "
              f"failed and unfinished):\n{listed}", file=sys.stderr)
        return 1
    return 0


def evaluate(params: Params) -> None:
    """Metrics of the declared runs only (every style), on the profile's device, against the staged style sets.
    One process for all runs: the backbones and the style sets' features are loaded once."""
    from eval.run import evaluate as run_metrics
    from eval.weights import MetricWeights

    metrics = params.metrics
    folders = [RESULTS / run / style for run in params.runs for style in params.styles
               if (RESULTS / run / style / "manifest.json").is_file()]
    if not folders:
        raise UserError(f"no results of any declared run under {RESULTS}: run the stylise stages first.")
    style_sets = {name: STAGED / "styles" / name / "manifest.json" for name in params.styles}
    if metrics.get("standin_weights"):
        weights = MetricWeights.from_json(STANDIN_WEIGHTS / "weights.json")
    else:
        weights = MetricWeights(**metrics.get("weights", {}))
    run_metrics(folders, METRICS, style_sets=style_sets, weights=weights, metrics=metrics.get("names"),
                bootstrap=metrics.get("bootstrap", 1000), set_bootstrap=metrics.get("set_bootstrap", 100),
                seed=params.seed, device=params.metrics_device, batch_size=metrics.get("batch_size", 8),
                options=metrics.get("options"))


def run_metrics(params: Params, run_name: str) -> dict[str, dict[str, float]]:
    """One run's metrics, style → metric → value, read from the evaluate stage's aggregate.csv (torch-free)."""
    import csv
    import math

    params.run(run_name)
    table = METRICS / "aggregate.csv"
    if not table.is_file():
        raise UserError(f"{table} not found: run the evaluate stage first (`sms evaluate`).")
    found: dict[str, dict[str, float]] = {}
    with open(table, newline="") as handle:
        for row in csv.DictReader(handle):
            value = float(row["value"] or "nan")
            if row["method"] == run_name and row["status"] == "ok" and math.isfinite(value):
                found.setdefault(row["style"], {})[row["metric"]] = float(f"{value:.6g}")
    return found


def report(params: Params) -> int:
    from analysis.report import main as write_report

    return write_report(["--metrics", str(METRICS), "--results", str(RESULTS), "--content", str(PREPARED),
                         "--styles", str(STAGED / "styles"), "--params", str(params.path), "--out", str(REPORT)])


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
