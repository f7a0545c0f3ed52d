"""The FLOP floor: the time an iteration would take if the device did nothing but its UNet matmuls at
the rate it reaches on one large square matmul.

    F          FLOPs of one UNet forward row at the run's latent size (torch FlopCounterMode, no grad,
               adapters disabled: the LoRA adapters add well under 1 %)
    FLOPs/iter ≈ forward rows × F + backward rows × 2F   (a backward ≈ 2 forwards: input and weight
               gradients; an upper bound here, where only the LoRA weights need gradients)
    throughput measured: n×n @ n×n in the variant's dtype, device-synchronised, 2n³ FLOPs per product
    floor      = FLOPs/iter ÷ throughput;  the table prints it and measured s/iter ÷ floor
"""
from __future__ import annotations

import time
from functools import cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from sms.models import precision
from sms.models.stack import DTYPES, ModelStack

MATMUL_SIDE = {"cpu": 2048, "cuda": 8192}   # largest side tried; smaller when one product is slow
_SLOW_PRODUCT_S = 0.25                      # stop growing the matrix once one product takes this long
_TIMED_S = 0.5                              # time repeated products for at least this long


@torch.no_grad()
def unet_forward_flops(models: ModelStack, latent_shape: tuple[int, ...]) -> int:
    """FLOPs of ONE UNet forward row (batch 1) at ``latent_shape`` = (1, C, h, w), counted on the real model."""
    device = models.device
    z = torch.zeros((1, *latent_shape[1:]), device=device)
    emb = models.embed([""])
    t = torch.tensor(500, device=device)
    with FlopCounterMode(display=False) as counter:
        models.denoisers.real(z, t, emb)
    return int(counter.get_total_flops())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@cache
def matmul_throughput(dtype: str, device: str) -> tuple[float, int]:
    """(FLOP/s, n) of an n×n matmul in ``dtype`` (or 'tf32': fp32 on TF32 tensor cores) on ``device``: n
    doubles from 256 up to MATMUL_SIDE while one product stays fast (fp16 matmuls on some CPUs run at
    < 1 GFLOP/s), then products are timed for ≥ 0.5 s after a warm-up product."""
    with precision.tf32(dtype == "tf32"):
        return _matmul_throughput(torch.float32 if dtype == "tf32" else DTYPES[dtype], torch.device(device))


def _matmul_throughput(dtype: torch.dtype, dev: torch.device) -> tuple[float, int]:
    cap = MATMUL_SIDE.get(dev.type, 4096)
    generator = torch.Generator().manual_seed(0)
    n = 256
    while True:
        a, b = (torch.randn(n, n, generator=generator).to(dev, dtype) for _ in range(2))
        a @ b  # warm-up (library initialisation, kernel choice)
        _synchronize(dev)
        start = time.perf_counter()
        a @ b
        _synchronize(dev)
        once = time.perf_counter() - start
        if n >= cap or once >= _SLOW_PRODUCT_S:
            break
        n *= 2
    reps = max(1, int(_TIMED_S / max(once, 1e-6)))
    _synchronize(dev)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _synchronize(dev)
    seconds = (time.perf_counter() - start) / reps
    return 2 * n**3 / seconds, n


def iteration_flops(forward_rows: float, backward_rows: float, forward_flops: int) -> float:
    return forward_rows * forward_flops + backward_rows * 2 * forward_flops


def floor_seconds(forward_rows: float, backward_rows: float, forward_flops: int, dtype: str, device: str) -> float:
    return iteration_flops(forward_rows, backward_rows, forward_flops) / matmul_throughput(dtype, device)[0]


def describe(forward_flops: int, latent_shape: tuple[int, ...], throughputs: dict[tuple[str, str], tuple[float, int]]) -> str:
    """The FLOP-floor line printed under the table."""
    rates = "; ".join(f"{dtype} {rate / 1e9:.1f} GFLOP/s ({n}² matmul, {device})"
                      for (dtype, device), (rate, n) in sorted(throughputs.items()))
    shape = "×".join(str(s) for s in latent_shape[1:])
    return (f"FLOP floor: F = {forward_flops / 1e9:.3f} GFLOP per UNet forward row ({shape} latent, FlopCounterMode); "
            f"FLOPs/iter ≈ forward rows × F + backward rows × 2F; measured matmul throughput: {rates}; "
            f"floor s/iter = FLOPs/iter ÷ throughput of the row's dtype")
