"""Where a stylise stage's images run: ``local`` (this process, one image after another) or ``ray`` (a pool of
workers on a Ray cluster, workflow/ray_executor.py). Both write the same files; the setting never changes a
result, so DVC does not track it (``profiles.P.executor`` is outside the stylise stages' params).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import UserError

EXECUTORS = ("local", "ray")
INSTALL_RAY = 'pip install -c constraints.txt -e ".[ray]"'


@dataclass(frozen=True)
class ExecutorOptions:
    kind: str = "local"
    address: str | None = None       # Ray cluster; None: $RAY_ADDRESS, else a local cluster started for the run
    gpus_per_worker: float = 1.0     # fractional: workers share a GPU; 0: CPU workers
    max_retries: int = 2             # per image, when its worker dies or fails other than by its input
    workers: int | None = None       # at most this many workers; None: every GPU share of the cluster


def executor_options(settings: dict[str, Any] | None = None, **flags: Any) -> ExecutorOptions:
    """``settings`` (a profile's ``executor`` section) overridden by the command line's flags that were given."""
    values = {**(settings or {}), **{key: value for key, value in flags.items() if value is not None}}
    options = ExecutorOptions(**values)
    problems = []
    if options.kind not in EXECUTORS:
        problems.append(f"kind (--executor) must be one of {', '.join(EXECUTORS)}, got {options.kind!r}")
    if not options.gpus_per_worker >= 0:
        problems.append(f"gpus_per_worker (--gpus-per-worker) must be ≥ 0, got {options.gpus_per_worker}")
    if options.max_retries < 0:
        problems.append(f"max_retries (--max-retries) must be ≥ 0, got {options.max_retries}")
    if options.workers is not None and options.workers < 1:
        problems.append(f"workers (--workers) must be ≥ 1, got {options.workers}")
    if problems:
        raise UserError(f"executor settings: {'; '.join(problems)}. Fix the flag or the profile's `executor:` "
                        "section of params.yaml.")
    return options


def executor_flags(args) -> dict[str, Any]:
    """The executor settings of `sms stylize`'s flags (None: not given; the profile or the default decides)."""
    return {"kind": args.executor, "address": args.ray_address, "gpus_per_worker": args.gpus_per_worker,
            "max_retries": args.max_retries, "workers": args.workers}


def require_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"the `ray` executor needs Ray, which is not installed in this environment: run `{INSTALL_RAY}` "
                        "in the suite's folder (on every node of the cluster), or use --executor local.") from None
    return ray


@dataclass
class StylizeJob:
    """One results folder to fill: the arguments of :func:`sms.runner.stylize_files` for either executor."""

    paths: list[Path]
    run_config: Any
    out_dir: Path
    style_name: str = ""
    run_name: str = ""
    captions: dict[str, str] | None = None
    shard: str | None = None

    def keywords(self) -> dict[str, Any]:
        return {"style_name": self.style_name, "run_name": self.run_name, "captions": self.captions, "shard": self.shard}


def stylize_jobs(jobs: list[StylizeJob], options: ExecutorOptions, *, progress: bool = True,
                 plugins: list[str] = ()) -> list:
    """Fill every job's folder; one RunReport per job. ``ray`` plans every job first so that one pool of workers
    serves them all (each worker reloads its models only when the model spec changes)."""
    from sms.runner import plan_images, stylize_files

    if options.kind == "local":
        return [stylize_files(job.paths, job.run_config, job.out_dir, **job.keywords(), progress=progress)
                for job in jobs]
    require_ray()
    from workflow.ray_executor import run_on_ray

    plans = [plan_images(job.paths, job.run_config, job.out_dir, **job.keywords()) for job in jobs]
    return run_on_ray(plans, options, progress=progress, plugins=list(plugins))
