"""An SD-1.5 ControlNet, loaded offline: a diffusers folder, a single ``.safetensors`` file (diffusers keys or
the original layout, e.g. lllyasviel's ``control_v11p_sd15_canny.safetensors``), or the seeded stand-in ``'tiny'``.

Single files go through ``ControlNetModel.from_single_file(path, config=<folder>)``: the bundled SD-1.5 config
(``configs/controlnet_sd15``, lllyasviel/control_v11p_sd15_canny's) or, for a file shaped like the stand-in, the
stand-in's config, chosen from the file's header; diffusers converts the original layout itself.
The stand-in is ``ControlNetModel.from_unet`` of the tiny UNet with its zero convolutions and its condition
embedding re-drawn from a seed (Kaiming-normal), so that the condition changes the result (a real ControlNet's
are trained, a fresh one's are zero and its condition embedding's output tiny).
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from diffusers.loaders.single_file_utils import SingleFileComponentError

from sms.models.configs import SD15_CONFIG_DIR
from sms.models.errors import PICKLE_SUFFIXES, ModelLoadError, pickle_refused_message, unreadable_file_message
from sms.models.quiet import dtype_keyword, quiet_loading
from sms.weights import TINY, WeightFileError, parse_stand_in, safetensors_header, weight_stamp

CONTROLNET_SD15_CONFIG_DIR = SD15_CONFIG_DIR.parent / "controlnet_sd15"
TINY_CONTROLNET_SEED = 4321
HINT_GAIN = 5.0
LDM_PREFIX = "control_model."   # the key prefix of lllyasviel's original ControlNet files

WHERE_FROM = (
    "SD-1.5 ControlNets are published by lllyasviel on Hugging Face: the diffusers folders "
    "lllyasviel/control_v11p_sd15_canny and lllyasviel/control_v11f1e_sd15_tile (config.json + "
    "diffusion_pytorch_model.safetensors), or the original single files of lllyasviel/ControlNet-v1-1 "
    "(control_v11p_sd15_canny.pth; safetensors conversions are common); download one onto this machine and "
    "name it as the model spec's `controlnet` (params.yaml `stylize.controlnet`), or use 'tiny' for the "
    "offline stand-in."
)


def controlnet_reference(spec) -> str | None:
    """The ControlNet a run uses: ``spec.controlnet``, or the stand-in when the base is the tiny stand-in
    (as the tiny base's style LoRA defaults to its stand-in)."""
    if spec.controlnet:
        return spec.controlnet
    stand_in = parse_stand_in(spec.base)
    return TINY if stand_in and stand_in[0] == TINY else None


def build_tiny_controlnet(seed: int = TINY_CONTROLNET_SEED) -> ControlNetModel:
    from sms.models.tiny import build_tiny_unet

    unet = build_tiny_unet()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(unet)
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.reset_parameters()
        embedding = controlnet.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            torch.nn.init.kaiming_normal_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
        # SiLU halves the signal at each of its 7 convs: without this the hint would be ~1/5 of conv_in(z)'s size
        embedding.conv_out.weight.data.mul_(HINT_GAIN)
    return controlnet.eval()


def tiny_controlnet_config_dir() -> Path:
    """The stand-in's config.json in the cache, for single files fabricated from the stand-in."""
    from sms.paths import cache_dir

    folder = cache_dir() / "tiny" / "controlnet_config"
    if not (folder / "config.json").is_file():
        build_tiny_controlnet().save_config(str(folder))
    return folder


def load_controlnet(reference: str | None, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    allow_pickle: bool = False) -> ControlNetModel:
    """The ControlNet ``reference`` names, frozen, in eval mode, on ``device``; cached per process (the runner
    builds a method per image), keyed by the file's size and modification time so a replaced file is re-read."""
    if not reference:
        raise ModelLoadError(
            "This method conditions SD-1.5 on a ControlNet and the run names none. " + WHERE_FROM)
    return _cached(reference, weight_stamp(reference), str(dtype), str(device), allow_pickle)


@functools.lru_cache(maxsize=2)
def _cached(reference: str, identity: tuple, dtype: str, device: str, allow_pickle: bool) -> ControlNetModel:
    torch_dtype = getattr(torch, dtype.removeprefix("torch."))
    with quiet_loading():
        controlnet = _load(reference, torch_dtype, allow_pickle).requires_grad_(False)
        return controlnet.to(device=device, dtype=torch_dtype).eval()


def _load(reference: str, dtype: torch.dtype, allow_pickle: bool) -> ControlNetModel:
    if reference == TINY:
        return build_tiny_controlnet()
    path = Path(reference).expanduser()
    if path.is_dir():
        return _from_folder(path, dtype)
    if path.is_file():
        return _from_single_file(path, dtype, allow_pickle)
    raise ModelLoadError(f"Cannot find the ControlNet {reference!r} (looked for the file or folder "
                         f"{str(path.resolve())!r}). " + WHERE_FROM)


def _from_folder(path: Path, dtype: torch.dtype) -> ControlNetModel:
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"The ControlNet folder {str(path)!r} has no config.json, so it is not a diffusers "
                             f"ControlNet folder. " + WHERE_FROM)
    for weights in sorted(path.glob("*.safetensors")):
        _check_readable(weights)
    try:
        return ControlNetModel.from_pretrained(str(path), local_files_only=True, **dtype_keyword(dtype))
    except (OSError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"Could not load the ControlNet folder {str(path)!r}: {error}. " + WHERE_FROM) from error


def _from_single_file(path: Path, dtype: torch.dtype, allow_pickle: bool) -> ControlNetModel:
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(pickle_refused_message(path, "ControlNet"))
    config = CONTROLNET_SD15_CONFIG_DIR
    if path.suffix.lower() == ".safetensors":
        config = _config_for(_check_readable(path), path)
    try:
        return ControlNetModel.from_single_file(str(path), config=str(config), local_files_only=True,
                                                **dtype_keyword(dtype))
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError, pickle.UnpicklingError) as error:
        raise ModelLoadError(f"Could not load {str(path)!r} as an SD-1.5 ControlNet with the config in "
                             f"{str(config)!r}: {error}. " + WHERE_FROM) from error


def _check_readable(path: Path) -> dict:
    try:
        return safetensors_header(path)
    except WeightFileError as error:
        raise ModelLoadError(unreadable_file_message(path, "ControlNet file", error) + " " + WHERE_FROM) from error


def _config_for(header: dict, path: Path) -> Path:
    """SD-1.5's config, or the stand-in's for a file of the stand-in's width (tests, demos), by ``conv_in``."""
    widths = [entry["shape"][0] for key, entry in header.items()
              if key in ("conv_in.weight", "input_blocks.0.0.weight", LDM_PREFIX + "input_blocks.0.0.weight")]
    if not widths or widths[0] == ControlNetModel.load_config(str(CONTROLNET_SD15_CONFIG_DIR))["block_out_channels"][0]:
        return CONTROLNET_SD15_CONFIG_DIR
    tiny = tiny_controlnet_config_dir()
    if widths[0] == ControlNetModel.load_config(str(tiny))["block_out_channels"][0]:
        return tiny
    raise ModelLoadError(f"The ControlNet file {str(path)!r} starts with {widths[0]} channels, not SD-1.5's 320: it "
                         f"was made for another architecture (SDXL, SD-2.x?). " + WHERE_FROM)


def check_fits(controlnet: ControlNetModel, unet: UNet2DConditionModel, reference: str) -> None:
    """Refuse a ControlNet whose residuals cannot be added to this UNet's skips."""
    keys = ("block_out_channels", "layers_per_block", "cross_attention_dim", "in_channels")
    mine = {key: _plain(controlnet.config[key]) for key in keys}
    theirs = {key: _plain(unet.config[key]) for key in keys}
    if mine != theirs:
        raise ModelLoadError(
            f"The ControlNet {reference!r} does not fit the base UNet: it has {mine}, the UNet {theirs}. A ControlNet "
            f"conditions the UNet it was trained with; use one made for SD-1.5 with an SD-1.5 base (or 'tiny' with "
            f"the tiny base). " + WHERE_FROM)


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def controlnet_to_ldm(controlnet: ControlNetModel, prefix: str = LDM_PREFIX) -> dict[str, torch.Tensor]:
    """The original (lllyasviel) key layout of a diffusers ControlNet: the inverse of diffusers'
    ``convert_controlnet_checkpoint``, for writing single files offline (tests, users)."""
    from sms.models.ldm_export import unet_key_to_ldm

    hint_slots = len(controlnet.controlnet_cond_embedding.blocks) + 1
    out: dict[str, torch.Tensor] = {}
    for key, tensor in controlnet.state_dict().items():
        module, _, param = key.rpartition(".")
        if module.startswith("controlnet_down_blocks."):
            name = f"zero_convs.{module.split('.')[1]}.0.{param}"
        elif module == "controlnet_mid_block":
            name = f"middle_block_out.0.{param}"
        elif module == "controlnet_cond_embedding.conv_in":
            name = f"input_hint_block.0.{param}"
        elif module == "controlnet_cond_embedding.conv_out":
            name = f"input_hint_block.{2 * hint_slots}.{param}"
        elif module.startswith("controlnet_cond_embedding.blocks."):
            name = f"input_hint_block.{2 * (int(module.split('.')[2]) + 1)}.{param}"
        else:
            name = unet_key_to_ldm(key, controlnet.config.layers_per_block, set())
        out[prefix + name] = tensor.detach().cpu().contiguous()
    return out
