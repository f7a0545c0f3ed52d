"""Style LoRA files (kohya/Civitai or diffusers format) read and attached through diffusers + peft."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import CLIPTextModel

from sms.models.errors import (
    PICKLE_SUFFIXES,
    ModelLoadError,
    lora_mismatch_message,
    missing_lora_message,
    pickle_refused_message,
)
from sms.models.loading import check_safetensors_readable

_DOWN_KEY_MARKERS = ("lora_A.", "lora.down.", "lora_down.")


def read_lora(path: str | Path, *, allow_pickle: bool = False) -> tuple[dict[str, torch.Tensor], dict | None]:
    """diffusers-format state dict (``unet.*`` / ``text_encoder.*`` keys) and kohya network alphas."""
    state_dict, alphas, _ = _read_lora_with_metadata(path, allow_pickle=allow_pickle)
    return state_dict, alphas


def _read_lora_with_metadata(path: str | Path, *, allow_pickle: bool = False
                             ) -> tuple[dict[str, torch.Tensor], dict | None, dict | None]:
    """As ``read_lora``, plus the peft adapter metadata (``r``, ``lora_alpha`` …) that diffusers-format files
    saved by ``save_lora_weights`` carry; without it their alpha would silently default to the rank."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(missing_lora_message(str(path)))
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(pickle_refused_message(path, "LoRA"))
    if path.suffix.lower() == ".safetensors":
        check_safetensors_readable(path, "LoRA")
    try:
        state_dict, alphas, metadata = StableDiffusionPipeline.lora_state_dict(
            str(path), use_safetensors=None, return_lora_metadata=True)
    except (ValueError, KeyError, RuntimeError, OSError) as error:  # e.g. LyCORIS/LoHa keys diffusers can't map
        raise ModelLoadError(
            f"The LoRA {str(path)!r} is not a LoRA diffusers can read (kohya/Civitai 'lora_unet_*' "
            f"lora_down/lora_up or diffusers 'unet.*' lora_A/lora_B keys; LyCORIS/LoHa/LoKr variants are not "
            f"supported): {error}") from error
    if not any(key.startswith("unet.") for key in state_dict):
        raise ModelLoadError(
            f"The LoRA {str(path)!r} has no UNet weights in a format diffusers recognises "
            f"(kohya 'lora_unet_*' or diffusers 'unet.*' keys); found e.g. {list(state_dict)[:3]}.")
    return state_dict, alphas, (metadata or None)


def _metadata_for(metadata: dict | None, prefix: str) -> dict | None:
    """The adapter metadata of one component (keys ``<prefix>.r`` …), or None where the file has none for it."""
    if not metadata or not any(key.startswith(f"{prefix}.") for key in metadata):
        return None
    return metadata


def _count_down_keys(state_dict: dict, prefix: str) -> int:
    return sum(1 for key in state_dict if key.startswith(prefix) and any(m in key for m in _DOWN_KEY_MARKERS))


def _unfit_modules(unet: UNet2DConditionModel, state_dict: dict) -> list[str] | None:
    """UNet module paths the LoRA targets that this UNet lacks or has with another shape (None: not checkable)."""
    from diffusers.utils import convert_unet_state_dict_to_peft

    try:
        part = {key[len("unet."):]: value for key, value in state_dict.items() if key.startswith("unet.")}
        if not any(".lora_A." in key for key in part):
            part = convert_unet_state_dict_to_peft(part)
        modules = dict(unet.named_modules())
        unfit = []
        for key, down in part.items():
            if not key.endswith(".lora_A.weight"):
                continue
            name = key[: -len(".lora_A.weight")]
            up = part.get(f"{name}.lora_B.weight")
            weight = getattr(modules.get(name), "weight", None)
            if (weight is None or up is None or weight.ndim < 2 or down.shape[1] != weight.shape[1]
                    or up.shape[0] != weight.shape[0]):
                unfit.append(name)
        return unfit
    except Exception:  # an unusual layout: leave the verdict to the loader and the count check
        return None


def _modules_with_adapter(model: torch.nn.Module, adapter_name: str) -> int:
    return sum(1 for module in model.modules()
               if isinstance(module, BaseTunerLayer) and adapter_name in getattr(module, "lora_A", {}))


def attach_style_lora(unet: UNet2DConditionModel, path: str | Path, *, adapter_name: str, scale: float,
                      text_encoder: CLIPTextModel | None = None, allow_pickle: bool = False) -> None:
    """Attach the LoRA's UNet part as adapter ``adapter_name`` at ``scale``; fuse its text-encoder part
    into ``text_encoder`` when one is given (the reference release skips those keys)."""
    path = Path(path).expanduser()
    state_dict, alphas, metadata = _read_lora_with_metadata(path, allow_pickle=allow_pickle)
    expected = _count_down_keys(state_dict, "unet.")
    unfit = _unfit_modules(unet, state_dict)
    if unfit:  # refuse before touching the UNet
        raise ModelLoadError(lora_mismatch_message(path, unfit, expected))
    _silence_diffusers_key_warnings()
    try:
        StableDiffusionPipeline.load_lora_into_unet(state_dict, alphas, unet=unet, adapter_name=adapter_name,
                                                    metadata=_metadata_for(metadata, "unet"))
    except (RuntimeError, ValueError) as error:
        raise ModelLoadError(f"{lora_mismatch_message(path, ['(loader error)'], expected)} Loader said: {error}") from error
    loaded = _modules_with_adapter(unet, adapter_name)
    if loaded != expected:
        unet.delete_adapters(adapter_name)
        raise ModelLoadError(lora_mismatch_message(path, [f"{expected - loaded} modules"], expected))
    unet.set_adapters([adapter_name], weights=[scale])
    if text_encoder is not None and _count_down_keys(state_dict, "text_encoder."):
        StableDiffusionPipeline.load_lora_into_text_encoder(
            state_dict, alphas, text_encoder=text_encoder, prefix="text_encoder",
            lora_scale=scale, adapter_name=adapter_name, metadata=_metadata_for(metadata, "text_encoder"))
        _fuse_and_unload_text_encoder(text_encoder, adapter_name, scale)


def merge_style_lora(unet: UNet2DConditionModel, path: str | Path, *, scale: float,
                     text_encoder: CLIPTextModel | None = None, allow_pickle: bool = False,
                     half_product: bool = False) -> None:
    """W ← W + scale·(alpha/rank)·up·down in place (the release's merge), leaving no adapter behind.

    ``half_product`` forms the update as the release does, in fp16 (``half_precision_delta``); otherwise
    peft fuses it in the weights' dtype (sms.deviations: ``fp16_lora_merge``)."""
    attach_style_lora(unet, path, adapter_name="style_merge", scale=scale, text_encoder=text_encoder,
                      allow_pickle=allow_pickle)
    if half_product:
        _add_half_precision_deltas(unet, "style_merge")
    else:
        unet.fuse_lora(lora_scale=1.0, adapter_names=["style_merge"])
    unet.unload_lora()


def half_precision_delta(up: torch.Tensor, down: torch.Tensor, scaling: float) -> torch.Tensor:
    """fp16(fp16(up₁₆·down₁₆)·scaling): the release casts both factors to fp16 before its matmul (spec §2).

    Kernel dimensions are flattened into the matrix product, so linear and convolution LoRAs both work."""
    return (up.flatten(1).half() @ down.flatten(1).half()) * scaling


@torch.no_grad()
def _add_half_precision_deltas(unet: UNet2DConditionModel, adapter_name: str) -> None:
    for module in unet.modules():
        if isinstance(module, BaseTunerLayer) and adapter_name in getattr(module, "lora_A", {}):
            weight = module.get_base_layer().weight
            delta = half_precision_delta(module.lora_B[adapter_name].weight, module.lora_A[adapter_name].weight,
                                         module.scaling[adapter_name])
            weight += delta.view(weight.shape).to(weight.dtype)  # fp16 → fp32 is exact: the release's `+=`


def _fuse_and_unload_text_encoder(text_encoder: CLIPTextModel, adapter_name: str, scale: float) -> None:
    for module in text_encoder.modules():
        if isinstance(module, BaseTunerLayer):
            module.set_scale(adapter_name, scale)
            module.merge(adapter_names=[adapter_name])
    from diffusers.utils.peft_utils import recurse_remove_peft_layers
    from peft.utils import get_peft_model_state_dict  # noqa: F401  (peft present)

    recurse_remove_peft_layers(text_encoder)


def _silence_diffusers_key_warnings() -> None:
    # The count check above turns unmatched keys into an error; diffusers' warning would only repeat it.
    logging.getLogger("diffusers.loaders.peft").setLevel(logging.ERROR)
