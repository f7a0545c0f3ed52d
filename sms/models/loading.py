"""Load SD-1.5-family components from 'tiny', a local diffusers folder, a single file, or a hub id."""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.loaders.single_file_utils import SingleFileComponentError
from transformers import CLIPTextModel, CLIPTokenizer

from sms.models.configs import SD15_CONFIG_DIR, sd15_scheduler_config
from sms.models.errors import (
    PICKLE_SUFFIXES,
    ModelLoadError,
    missing_model_message,
    pickle_refused_message,
    unreadable_file_message,
)
from sms.models.quiet import dtype_keyword, quiet_loading
from sms.models.tokenizer import sd_clip_tokenizer
from sms.weights import RANDOM_SD15, TINY, is_hub_id, parse_stand_in, safetensors_header


@dataclass
class BaseComponents:
    """What one SD-1.x checkpoint provides."""

    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    scheduler: DDIMScheduler
    source: str


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def load_base(reference: str, *, dtype: torch.dtype = torch.float32, allow_pickle: bool = False,
              single_file_config: str | None = None) -> BaseComponents:
    """Resolve ``reference`` (``'tiny'``, folder, single file, or hub id) to SD-1.x components."""
    with quiet_loading():
        return _load_base(reference, dtype, allow_pickle, single_file_config)


def _load_base(reference: str, dtype: torch.dtype, allow_pickle: bool, single_file_config: str | None
               ) -> BaseComponents:
    stand_in = parse_stand_in(reference)
    if stand_in is not None:
        name, variant = stand_in
        return _tiny_components(dtype, variant) if name == TINY else _random_sd15_components(dtype, variant)
    path = Path(reference).expanduser()
    if path.is_dir():
        return _from_folder(path, dtype)
    if path.is_file():
        return _from_single_file(path, dtype, allow_pickle, single_file_config)
    if is_hub_id(reference):
        return _from_hub(reference, dtype)
    raise ModelLoadError(missing_model_message("model", reference, [str(path.resolve())]))


def _tiny_components(dtype: torch.dtype = torch.float32, variant: int = 0) -> BaseComponents:
    from sms.models import tiny

    def cast(module):  # built in fp32; cast only when asked (diffusers warns on every dtype `.to`)
        return module if dtype == torch.float32 else module.to(dtype)

    return BaseComponents(
        tokenizer=sd_clip_tokenizer(),
        text_encoder=cast(tiny.build_tiny_text_encoder(tiny.TINY_SEED + 2 + 1000 * variant)),
        vae=cast(tiny.build_tiny_vae(tiny.TINY_SEED + 1 + 1000 * variant)),
        unet=cast(tiny.build_tiny_unet(tiny.TINY_SEED + 1000 * variant)),
        scheduler=tiny.build_tiny_scheduler(),
        source=TINY,
    )


def _random_sd15_components(dtype: torch.dtype, variant: int = 0) -> BaseComponents:
    from transformers import CLIPTextConfig

    from sms.models.configs import sd15_component_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(variant)
        unet = UNet2DConditionModel.from_config(sd15_component_config("unet")).to(dtype)
        vae = AutoencoderKL.from_config(sd15_component_config("vae")).to(dtype)
        text_encoder = CLIPTextModel(CLIPTextConfig(**sd15_component_config("text_encoder"))).to(dtype)
    scheduler = DDIMScheduler.from_config(sd15_scheduler_config())
    return BaseComponents(sd_clip_tokenizer(), text_encoder, vae, unet, scheduler, RANDOM_SD15)


def _components_of(pipe: StableDiffusionPipeline, source: str) -> BaseComponents:
    scheduler = DDIMScheduler.from_config({**sd15_scheduler_config(), **_schedule_of(pipe.scheduler.config)})
    return BaseComponents(pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet, scheduler, source)


def _schedule_of(config) -> dict:
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type")
    return {key: config[key] for key in keys if key in config}


def _from_folder(path: Path, dtype: torch.dtype) -> BaseComponents:
    if not (path / "model_index.json").is_file():
        raise ModelLoadError(missing_model_message(
            "diffusers pipeline folder", str(path), [f"{path / 'model_index.json'} (missing)"]))
    for weights in sorted(path.glob("*/*.safetensors")):  # a truncated download: say so, not "cannot find"
        check_safetensors_readable(weights, "weights file")
    kwargs = {} if (path / "tokenizer").is_dir() else {"tokenizer": sd_clip_tokenizer()}
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(path), **dtype_keyword(dtype), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, local_files_only=True, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{missing_model_message('model', str(path), [str(path)])} Loader said: {error}") from error
    return _components_of(pipe, str(path))


def _from_single_file(path: Path, dtype: torch.dtype, allow_pickle: bool, config: str | None) -> BaseComponents:
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(pickle_refused_message(path, "checkpoint"))
    if path.suffix.lower() == ".safetensors":
        check_safetensors_readable(path, "checkpoint")
    config_dir = config or str(SD15_CONFIG_DIR)
    try:
        pipe = StableDiffusionPipeline.from_single_file(
            str(path), config=config_dir, local_files_only=True, **dtype_keyword(dtype),
            tokenizer=sd_clip_tokenizer(), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError, pickle.UnpicklingError) as error:
        raise ModelLoadError(
            f"Could not load the single-file checkpoint {str(path)!r} as SD-1.x with the configs in "
            f"{config_dir!r}: {error}. Is it an SD-1.5-family checkpoint (not SDXL/SD-2)?") from error
    return _components_of(pipe, str(path))


def _from_hub(repo_id: str, dtype: torch.dtype) -> BaseComponents:
    looked = ["the local Hugging Face cache" + (" (HF_HUB_OFFLINE=1: no download tried)" if hub_offline() else "")]
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            repo_id, **dtype_keyword(dtype), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, local_files_only=hub_offline())
    except (OSError, ValueError) as error:
        raise ModelLoadError(missing_model_message("model", repo_id, looked)) from error
    return _components_of(pipe, repo_id)


def check_safetensors_readable(path: Path, what: str) -> None:
    """Open the header and touch every tensor, so a truncated file fails here with a clear message."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                handle.get_slice(key).get_shape()
        safetensors_header(path)
    except Exception as error:  # safetensors raises its own SafetensorError type
        raise ModelLoadError(unreadable_file_message(path, what, error)) from error
