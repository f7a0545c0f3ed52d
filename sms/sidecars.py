"""What a result's sidecar records (the JSON beside each PNG): the fields every result has, then a score-distillation
run's trace or a sampling / classic method's phases. The runner and the generator write them; readers use
sms.results."""
from __future__ import annotations

import platform
from dataclasses import asdict

import torch

from sms import __version__
from sms.config import ResolvedRun
from sms.hashing import sha256_bytes
from sms.loop import LoopResult
from sms.models.loading import TINY
from sms.models.stack import ModelStack
from sms.results import SIDECAR_SCHEMA
from sms.stylizer import Stylized
from sms.weights import reference_digest

DEMO_LABEL = "embedded default (tiny random models): numbers test the machinery, not the paper"


def base_sidecar(image: str, location: str, data: bytes, size, run: ResolvedRun, digest: str,
                 models: ModelStack | None) -> dict:
    """The fields every result's sidecar has, whatever produced it (the loop here, a generator elsewhere)."""
    return {
        "schema": SIDECAR_SCHEMA,
        "id": image,
        "label": DEMO_LABEL if stands_in(run) else "",
        "source": {"path": location, "sha256": sha256_bytes(data), "size": list(size)},
        "config": run.as_dict(),
        "config_digest": digest,
        "seed": run.loop.seed,
        "models": models.fingerprint() if models is not None else {},
        "environment": {"suite": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "device": str(models.device) if models is not None else run.run.model.device,
                        "dtype": run.run.model.dtype},
    }


def stands_in(run: ResolvedRun) -> bool:
    """Whether the result comes from stand-in weights (the demo's tiny random models), so its numbers test the
    machinery only; a classic method with real weights (Magenta's ONNX networks) says no even in the demo."""
    if run.is_distillation:
        return run.run.model.base == TINY
    return run.method_cls.stand_in(run)


def stylizer_sidecar(sidecar: dict, result: Stylized, run: ResolvedRun) -> dict:
    """A sampling or classic method's sidecar: the common fields, its own weights, its phases' timings and its
    UNet rows."""
    steps = max(result.steps, 1)
    sidecar["models"] = {**sidecar["models"], **{label: reference_digest(path) for label, path
                                                  in run.method_cls.weights(run).items()}}
    return {
        **sidecar,
        "family": run.method_cls.family,
        "iterations": result.steps,
        "timings": {"seconds_total": result.seconds_total, "seconds_iterations": sum(result.phases.values()),
                    "seconds_per_iter": sum(result.phases.values()) / steps,
                    **{f"seconds_{phase}": seconds for phase, seconds in result.phases.items()}},
        "peak_memory_bytes": result.peak_memory_bytes,
        "unet_forwards": {"total": result.unet_forwards, "per_iter": result.unet_forwards / steps},
        **result.record,
    }


def loop_sidecar(sidecar: dict, result: LoopResult, run: ResolvedRun) -> dict:
    """A score-distillation run's sidecar: the common fields, its timings, UNet rows and per-step trace."""
    iters = max(run.loop.iters, 1)
    forwards = sum(result.trace.forwards)
    return {
        **sidecar,
        "iterations": run.loop.iters,
        "timings": {"seconds_total": result.seconds_total, "seconds_iterations": result.seconds_iterations,
                    "seconds_per_iter": result.seconds_iterations / iters},
        "peak_memory_bytes": result.peak_memory_bytes,
        "unet_forwards": {"total": forwards, "per_iter": forwards / iters},
        "nonfinite": {"total": sum(result.trace.nonfinite),
                      "steps": [i for i, n in enumerate(result.trace.nonfinite) if n]},
        "trace": asdict(result.trace),
    }
