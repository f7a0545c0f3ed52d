"""Model stacks for the benchmark: one loaded at a time, the full-size stand-in given a style LoRA.

``sd15-random`` is the full-size SD-1.5 architecture with random weights (runtime does not depend on
weight values). So that its style network runs through a LoRA adapter as a real style LoRA would (and the
batched path routes three adapters, not two), it gets a random rank-4 kohya-format style LoRA on the
attention projections: the tiny stand-in's recipe (``sms.models.tiny``) applied to the full-size UNet.
"""
from __future__ import annotations

import dataclasses
import gc
from contextlib import contextmanager
from pathlib import Path

import torch

from sms.models import ModelSpec, load_stack, loading
from sms.models.stack import ModelStack

RANDOM_SD15 = loading.RANDOM_SD15


@contextmanager
def _quiet_diffusers():
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32: []" on every .to(dtype)
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


def random_style_lora(unet_config: dict) -> Path:
    """Write (once) a random kohya-format style LoRA fitting a UNet with ``unet_config``."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from sms.models.tiny import tiny_style_lora_state_dict
    from sms.paths import cache_dir

    path = cache_dir() / "bench" / "sd15_random_style_lora.safetensors"
    if not path.exists():
        with torch.device("meta"):  # shapes only: no 3.4 GB of weights to build a file of a few MB
            unet = UNet2DConditionModel.from_config(unet_config)
        state = {k: v for k, v in tiny_style_lora_state_dict(unet).items() if k.startswith("lora_unet_")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(state, str(tmp), metadata={"ss_network_module": "networks.lora"})
        tmp.replace(path)
    return path


def prepare_spec(spec: ModelSpec) -> ModelSpec:
    """The spec actually loaded: sd15-random without a style LoRA gets the random one (an adapter on the
    shared UNet, or merged into a separate style base such as ``sd15-random:1``)."""
    if spec.base == RANDOM_SD15 and spec.style_lora is None:
        from sms.models.configs import sd15_component_config

        return dataclasses.replace(spec, style_lora=str(random_style_lora(sd15_component_config("unet"))))
    return spec


def load(spec: ModelSpec) -> ModelStack:
    with _quiet_diffusers():
        return load_stack(prepare_spec(spec))


def free_memory(device: torch.device) -> None:
    """After the caller dropped its last reference to a stack: return its memory before the next loads."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
