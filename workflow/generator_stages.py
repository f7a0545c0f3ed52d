"""The feed-forward runs of params.yaml (runs that declare ``generator:``; issue 14).

For each style: train G_θ with the run's method on the profile's ``generator.train_content`` (staged by the
``stage`` stage; crops at the profile's ``generator.train`` settings, each image first resized to the
content's ``size``) into ``results/RUN/_generator/STYLE/`` — resumable from its checkpoints, kept when finished,
trained anew when the settings, data or weight files changed — then stylise the prepared content with it into ``results/RUN/STYLE/``, the per-image path's format, so
``evaluate`` and ``report`` treat the run as any other.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from workflow.errors import UserError
from workflow.params import Params
from workflow.stages import (
    PREPARED,
    RESULTS,
    TRAIN_CONTENT,
    prepared_records,
    require_valid,
    run_outcome,
    staged_images,
)

GENERATORS = "_generator"   # results/RUN/_generator/STYLE: not a style (analysis skips "_" folders)


def generator_dir(run_name: str, style_name: str) -> Path:
    return RESULTS / run_name / GENERATORS / style_name


def _generator_run(params: Params, run_name: str) -> None:
    params.run(run_name)
    if not params.is_generator_run(run_name):
        raise UserError(f"run {run_name!r} declares no `generator:` in {params.path}; `sms train-generator --run` "
                        "is for feed-forward runs (e.g. `generator: {}` to use the profile's training settings).")
    require_valid(params, [run_name])


def train(params: Params, run_name: str, progress: bool = True) -> int:
    """Train (or resume, or keep) the run's generator for every style of the profile."""
    from sms.generator_train import train_generator

    _generator_run(params, run_name)
    content = params.generator["train_content"]
    settings = params.train_config(run_name)
    if settings.short_side is None:
        settings = replace(settings, short_side=content["size"])
    paths = staged_images(TRAIN_CONTENT, content.get("limit"))
    for style_name in params.styles:
        result = train_generator(paths, params.run_config(run_name, style_name), settings,
                                 generator_dir(run_name, style_name), progress=progress, restart=True)
        state = "kept (finished)" if result.steps_run == 0 else f"trained {result.steps_run} steps"
        print(f"{run_name}/{style_name}: generator {state}, {result.seconds_per_step:.3g} s/step")
    return 0


def stylize(params: Params, run_name: str, progress: bool = True, batch_size: int = 8) -> int:
    """Train the generators if needed, then stylise the prepared content with each; exit 1 if any image failed."""
    from sms.generator_infer import stylize_with_generator

    train(params, run_name, progress)
    paths = [PREPARED / record["path"] for record in prepared_records()]
    reports = ((style_name, stylize_with_generator(paths, generator_dir(run_name, style_name),
                                                   RESULTS / run_name / style_name, batch_size=batch_size,
                                                   style_name=style_name, run_name=run_name))
               for style_name in params.styles)
    return run_outcome(run_name, reports)
