"""Shared pieces of the deviation measurements (tests/core/test_deviation*.py): tiny latents, SMS gradients on
a stack whose fake score has taken one step (so ε_fake ≠ ε_real), a smooth image, relative error and PSNR."""
from __future__ import annotations

from functools import cache

import numpy as np
import torch
from PIL import Image

from sms.method import Prompts, StepState
from sms.models import ModelSpec, load_stack
from sms.rng import RandomStreams
from sms.style_matching import SMSConfig, StyleMatchingScore

PROMPTS = Prompts("watercolor style", "a cat")
STEPS = (0, 120, 260, 450)


def latents(shape=(1, 4, 8, 8), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, z_src), two independent standard-normal latents."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def trained_sms(stack, prompts: Prompts = PROMPTS, **config) -> tuple[StyleMatchingScore, RandomStreams]:
    """SMS on ``stack`` after one fake-LoRA step from the seeded init (trains ``stack``: never the session one)."""
    method = StyleMatchingScore(SMSConfig(**config), stack, prompts)
    streams = RandomStreams(0, "deviations")
    method.begin(streams)
    z, z_src = latents()
    method.update(StepState(0, 500, z, z_src, streams))
    return method, streams


def gradient(method: StyleMatchingScore, streams: RandomStreams, step: int) -> torch.Tensor:
    z, z_src = latents()
    return method.gradient(StepState(step, 500, z, z_src, streams)).g


@cache
def sms_gradients(style_base: str | None = None, release_lora_merge: bool = False) -> tuple[torch.Tensor, ...]:
    """g at STEPS (same t and ε for every stack) on a fresh tiny stack built from these settings."""
    method, streams = trained_sms(load_stack(ModelSpec(style_base=style_base, release_lora_merge=release_lora_merge)))
    return tuple(gradient(method, streams, step) for step in STEPS)


def smooth_image(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth RGB test image: one random 2-D sinusoid per channel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y) + rng.uniform(0, 6))
                for _ in range(3)]
    return Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))


def relative(a, b) -> float:
    """Largest relative L2 error ‖a − b‖/‖b‖ over paired tensors."""
    return max(float((x - y).norm() / y.norm()) for x, y in zip(a, b))


def psnr(reference: np.ndarray, image) -> float:
    """PSNR in dB of an 8-bit image against a float reference on the 0–255 scale."""
    error = np.mean((np.asarray(reference, dtype=np.float64) - np.asarray(image, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / error))
