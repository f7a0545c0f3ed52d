"""Time one (method, variant) on a loaded stack with the suite's own per-image loop.

Peak memory: CUDA max_memory_allocated, or on a CPU the peak resident set (benchmarks.memory).
s/iter: ``LoopResult.seconds_iterations`` (device-synchronised; VAE encode/decode and warm-up excluded)
÷ iterations. Forwards: the loop's trace (UNet sample rows per iteration, gradient + update). Backward
passes: every UNet output that requires grad gets a tensor hook (installed around ``Denoisers._run``,
outside any compiled region); a pass is one such output receiving a gradient, its rows that output's
batch size. A graph that is built but never back-propagated (the reference order's relevance pass)
therefore counts 0; the reference fake update back-propagates through its batch of 2 (the wasted
uncond row included) and counts 1 pass, 2 rows.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from benchmarks.memory import PeakResident
from sms.config import ResolvedRun, resolve
from sms.loop import stylize_image
from sms.models.stack import ModelStack


@dataclass
class Timing:
    seconds_per_iter: float
    forwards_per_iter: float
    backward_passes_per_iter: float
    backward_rows_per_iter: float
    peak_bytes: int | None
    peak_kind: str = "allocated"  # CUDA: tensors allocated; CPU: the process's resident set (benchmarks.memory)


@contextmanager
def counting_backward(models: ModelStack):
    """Yield {'passes', 'rows'}: UNet outputs that received a gradient inside the block, and their rows."""
    denoisers = models.denoisers
    counts = {"passes": 0, "rows": 0}
    run_unet = denoisers._run

    def on_grad(grad: torch.Tensor) -> None:
        counts["passes"] += 1
        counts["rows"] += grad.shape[0]

    def counted_run(unet, z_t, t, emb):
        out = run_unet(unet, z_t, t, emb)
        if out.requires_grad:
            out.register_hook(on_grad)
        return out

    denoisers._run = counted_run  # instance attribute shadows the method; removed below
    try:
        yield counts
    finally:
        del denoisers._run


def with_iters(run: ResolvedRun, iters: int) -> ResolvedRun:
    config = run.run
    overrides = {**config.loop_overrides, "iters": iters}
    return resolve(type(config)(**{**config.__dict__, "loop_overrides": overrides}))


def time_variant(models: ModelStack, run: ResolvedRun, photo, iters: int, warmup: int) -> Timing:
    if warmup > 0:
        stylize_image(photo, "bench", models, with_iters(run, warmup), progress=False)
    on_cuda = models.device.type == "cuda"
    with counting_backward(models) as backward, (nullcontext() if on_cuda else PeakResident()) as resident:
        result = stylize_image(photo, "bench", models, with_iters(run, iters), progress=False)
    return Timing(result.seconds_iterations / iters, sum(result.trace.forwards) / iters,
                  backward["passes"] / iters, backward["rows"] / iters,
                  result.peak_memory_bytes if on_cuda else resident.bytes, "allocated" if on_cuda else "RSS")
