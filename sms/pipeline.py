"""DVC stage entry points; each reads ``params.yaml`` and the active ``profile`` (demo | paper).

    python -m sms.pipeline stage                # content + style reference sets → data/staged/
    python -m sms.pipeline prepare              # centre-crop/resize → data/prepared/content/
    python -m sms.pipeline stylize RUN [--shard i/n]   # every style of the profile → results/RUN/STYLE/
    python -m sms.pipeline evaluate             # metrics over results/ → reports/metrics/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from sms.config import RunConfig, deep_merge
from sms.method import Prompts
from sms.models.stack import ModelSpec

STAGED = Path("data/staged")
PREPARED = Path("data/prepared/content")
RESULTS = Path("results")
METRICS = Path("reports/metrics")
STANDIN_WEIGHTS = STAGED / "metric_weights"   # random stand-in backbones (demo): every metric runs, labelled


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    params = yaml.safe_load(Path(path).read_text())
    name = params["profile"]
    if name not in params["profiles"]:
        raise SystemExit(f"params.yaml: profile {name!r} is not one of {sorted(params['profiles'])}")
    return {**params, "active": params["profiles"][name], "profile_name": name}


def stage(params: dict) -> None:
    profile = params["active"]
    content = profile["content"]
    if profile.get("metrics", {}).get("standin_weights"):
        from eval.standin import write_standin_weights

        write_standin_weights(STANDIN_WEIGHTS, seed=params["seed"])
    if content["kind"] == "demo":
        from data.demo import materialise_demo_content, materialise_demo_style

        materialise_demo_content(STAGED / "content")
        for name, style in profile["styles"].items():
            materialise_demo_style(STAGED / "styles" / name, style.get("demo_set", "painted"))
        return
    from data.div2k import SPLITS, stage_div2k
    from data.style_set import stage_style_set

    stage_div2k(STAGED / "content", SPLITS[content.get("split", "valid")],
                zip_path=_optional_path(content.get("zip")), folder=_optional_path(content.get("folder")))
    for name, style in profile["styles"].items():
        stage_style_set(name, Path(style["style_set"]).expanduser(), STAGED / "styles" / name)


def prepare(params: dict) -> None:
    from data.prepare import prepare as prepare_images

    content = params["active"]["content"]
    prepare_images(STAGED / "content", PREPARED, content["size"], limit=content.get("limit"))


SPEED_OPTIONS = ("tf32", "channels_last", "compile", "compile_mode")  # a profile's optional ModelSpec settings


def run_config(params: dict, run_name: str, style_name: str) -> RunConfig:
    """The :class:`RunConfig` of one (run, style) cell: the run's method/ablation + the profile + the style."""
    from sms.ablations import ablation_run

    profile, style, entry = params["active"], params["active"]["styles"][style_name], params["runs"][run_name]
    model = ModelSpec(base=profile["model"], style_base=style.get("style_base"), style_lora=style.get("lora"),
                      lora_scale=style.get("lora_scale", 0.8), dtype=profile.get("dtype", "float32"),
                      device=profile.get("device", "cpu"),
                      **{key: profile[key] for key in SPEED_OPTIONS if key in profile})
    loop = {"seed": params["seed"], "resolution": profile["resolution"], "lambda_identity": style["lambda"]}
    if profile.get("iters"):
        loop["iters"] = profile["iters"]
    prompts = Prompts(style=style["prompt"])
    if "ablation" in entry:
        config = ablation_run(entry["ablation"], prompts, model)
        return RunConfig(**{**config.__dict__, "loop_overrides": deep_merge(loop, config.loop_overrides)})
    return RunConfig(method=entry["method"], profile=entry.get("profile"), prompts=prompts, model=model,
                     loop_overrides=deep_merge(loop, entry.get("loop", {})), method_overrides=entry.get("set", {}))


def stylize(params: dict, run_name: str, shard: str | None) -> int:
    from sms.runner import stylize_files

    if run_name not in params["runs"]:
        raise SystemExit(f"unknown run {run_name!r}; params.yaml runs: {', '.join(params['runs'])}")
    records = json.loads((PREPARED / "manifest.json").read_text())["records"]
    paths = [PREPARED / record["path"] for record in records]
    captions = {str(PREPARED / r["path"]): r.get("caption", "") for r in records}
    failures = 0
    for style_name in params["active"]["styles"]:
        report = stylize_files(paths, run_config(params, run_name, style_name), RESULTS / run_name / style_name,
                               shard=shard, style_name=style_name, run_name=run_name, captions=captions)
        for path, reason in report.failed.items():
            print(f"skipped {path}: {reason}", file=sys.stderr)
        failures += len(report.failed)
        print(f"{run_name}/{style_name}: wrote {len(report.written)}, kept {len(report.skipped_finished)} finished")
    return 0


def evaluate(params: dict) -> None:
    from eval.run import evaluate as run_metrics
    from eval.weights import MetricWeights

    metrics = params["active"].get("metrics", {})
    folders = sorted(path for path in RESULTS.glob("*/*") if (path / "manifest.json").is_file())
    style_sets = {name: Path(style["style_set"]).expanduser() if style.get("style_set") else STAGED / "styles" / name
                  for name, style in params["active"]["styles"].items()}
    if metrics.get("standin_weights"):
        weights = MetricWeights.from_json(STANDIN_WEIGHTS / "weights.json")
    else:
        weights = MetricWeights(**metrics.get("weights", {}))
    run_metrics(folders, METRICS, style_sets=style_sets, weights=weights,
                metrics=metrics.get("names"), bootstrap=metrics.get("bootstrap", 1000), seed=params["seed"],
                options=metrics.get("options"))


def _optional_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sms.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stage")
    commands.add_parser("prepare")
    stylize_parser = commands.add_parser("stylize")
    stylize_parser.add_argument("run")
    stylize_parser.add_argument("--shard", default=None)
    commands.add_parser("evaluate")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    if args.command == "stage":
        stage(params)
    elif args.command == "prepare":
        prepare(params)
    elif args.command == "stylize":
        return stylize(params, args.run, args.shard)
    elif args.command == "evaluate":
        evaluate(params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
