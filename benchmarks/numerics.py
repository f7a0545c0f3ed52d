"""Gradient check: does a fast path give the fp32 baseline's gradient, within its dtype's tolerance?

One ``method.gradient`` per variant on the SAME latents, t and ε: z_src is encoded once (fp32 stack),
z = z_src + 0.05·N(0, 1) from a named stream, and t, ε come from RandomStreams(seed, "bench-grad").
Before the gradient the method is begun (fresh seeded fake LoRA) and takes ONE ``update``, so that for
SMS/VSD ε_fake ≠ ε_real and the fake branch is exercised. Error = ‖g − g_ref‖₂ / ‖g_ref‖₂ in float64,
g_ref from the method's baseline variant on the fp32 stack.

Tolerances: fp32 2e-4 (rounding order only); tf32, bf16, fp16 1e-2. Reduced precision FAILS that for
SMS by the dtype itself, not by the fast path (measured 2026-11-25, benchmarks/results): one bf16 UNet
call is already ~1e-2 off its fp32 output on the full-size architecture (random weights), CFG at 4.5
multiplies that ~4×, and g is a difference of two such predictions times SAGR's R, itself a normalised
cond − uncond difference. The table prints the errors as measured.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from sms.config import ResolvedRun
from sms.image_tensors import image_to_tensor, working_size
from sms.loop import encode
from sms.method import StepState
from sms.models.stack import ModelStack
from sms.rng import RandomStreams

#: relative L2 error of g allowed per arithmetic; fp32: batching, memory format and call order round
#: differently, and g's cancellation magnifies last bits (measured up to 1.1e-4 on tiny, ~1e-5 full size)
TOLERANCE = {"float32": 2e-4, "tf32": 1e-2, "bfloat16": 1e-2, "float16": 1e-2}
IMAGE_ID = "bench-grad"


def probe_photo(resolution: int) -> Image.Image:
    """A seeded noise image: every timing and gradient check starts from it (its content does not matter)."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8))


def probe_latents(models: ModelStack, run: ResolvedRun, photo, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, z_src) on the CPU in fp32, shared by every variant's check."""
    streams = RandomStreams(seed, IMAGE_ID)
    size = working_size(photo.width, photo.height, run.loop.resolution)
    z_src = encode(models, image_to_tensor(photo, size), streams, run.loop.init).float().cpu()
    z = z_src + 0.05 * streams.normal(0, "bench_z", z_src.shape)
    return z, z_src


def one_gradient(models: ModelStack, run: ResolvedRun, z: torch.Tensor, z_src: torch.Tensor,
                 seed: int = 0) -> torch.Tensor:
    """g of one ``method.gradient`` at step 0 after ``begin`` and one ``update`` (float64, CPU)."""
    streams = RandomStreams(seed, IMAGE_ID)
    z, z_src = z.to(models.device), z_src.to(models.device)
    method = run.method_cls(run.method_config, models, run.run.prompts)
    method.begin(streams)
    method.update(StepState(0, run.loop.iters, z, z_src, streams))
    gradient = method.gradient(StepState(0, run.loop.iters, z, z_src, streams))
    return gradient.g.detach().double().cpu()


def relative_error(g: torch.Tensor, g_ref: torch.Tensor) -> float:
    reference = float(g_ref.norm())
    return float((g - g_ref).norm()) / reference if reference else float((g - g_ref).norm())


def verdict(error: float, dtype: str) -> tuple[float, str]:
    """(tolerance, 'PASS' | 'FAIL') for a relative error measured in ``dtype``."""
    tolerance = TOLERANCE[dtype]
    return tolerance, "PASS" if error < tolerance else "FAIL"
