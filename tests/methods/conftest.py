"""Shared pieces for the method tests: a smooth 64×64 content image, prompts, and a counted tiny run."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

from workflow.discovery import load_methods

load_methods()  # before collection: the conformance suite is parametrised over the registry

ITERS = 3


@dataclass
class CountedRun:
    result: object           # sms.loop.LoopResult
    unet_rows: int           # sample rows seen by forward hooks on every UNet of the stack


def smooth_image(size: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0.5, 2) * y) + rng.uniform(0, 6))
                for _ in range(3)]
    return Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny models are overhead-bound: one intra-op thread is faster, and far faster on a shared CPU
    (measured: 5 tiny-UNet forwards 0.1 s with 1 thread vs 1–18 s with 2 under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def content_image() -> Image.Image:
    return smooth_image()


@pytest.fixture(scope="session")
def prompts():
    from sms.method import Prompts
    from sms.models.tiny import TINY_STYLE_PROMPT

    return Prompts(style=TINY_STYLE_PROMPT, caption="a close up of a dog")


def count_unet_rows(stack):
    """Forward hooks on the base UNet (and the style UNet if separate); returns (rows-getter, remove)."""
    rows = [0]

    def hook(module, args, kwargs, output):
        rows[0] += (args[0] if args else kwargs["sample"]).shape[0]

    unets = {id(u): u for u in (stack.denoisers.unet, stack.denoisers.style_unet)}.values()
    handles = [unet.register_forward_hook(hook, with_kwargs=True) for unet in unets]
    return (lambda: rows[0]), (lambda: [h.remove() for h in handles])


@pytest.fixture(name="count_unet_rows")
def _count_unet_rows_fixture():
    return count_unet_rows


@pytest.fixture
def run_method(content_image, prompts):
    """stylize_image on a FRESH tiny stack (SMS/VSD train their fake LoRA), resolution 64, counted."""
    from sms.config import RunConfig, resolve
    from sms.loop import stylize_image
    from sms.models import ModelSpec, load_stack

    def run(method: str, profile: str | None = None, *, iters: int = ITERS, streams=None,
            method_overrides: dict | None = None, loop_overrides: dict | None = None) -> CountedRun:
        stack = load_stack(ModelSpec())
        rows, remove = count_unet_rows(stack)
        config = RunConfig(method=method, profile=profile, prompts=prompts,
                           loop_overrides={"iters": iters, "resolution": 64, **(loop_overrides or {})},
                           method_overrides=method_overrides or {})
        try:
            result = stylize_image(content_image, "conformance", stack, resolve(config), progress=False,
                                   streams=streams)
        finally:
            remove()
        return CountedRun(result, rows())

    return run
