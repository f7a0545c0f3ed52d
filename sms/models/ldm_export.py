"""Write diffusers SD-1.x components as one original-layout (CompVis/LDM) ``.safetensors`` checkpoint.

diffusers only converts LDM → diffusers (``diffusers.loaders.single_file_utils``); this module is the exact
inverse of ``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint`` and ``convert_ldm_clip_checkpoint``.
It exists so the tests can exercise ``StableDiffusionPipeline.from_single_file`` offline with the tiny random
components, and for users who want a single file (as shared on Civitai) from a diffusers folder.

Key layout written (SD-1.x): ``model.diffusion_model.*`` (UNet), ``first_stage_model.*`` (VAE, attention
projections as 1×1 convs) and ``cond_stage_model.transformer.text_model.*`` (CLIP text encoder).
Block indices are derived from each model's config, not hard-coded to SD-1.5; before anything is written,
diffusers' own converters are run on the result and must give back every tensor unchanged.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

# diffusers module path → LDM module path (the inverse of diffusers' DIFFUSERS_TO_LDM_MAPPING["unet"]).
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "class_embedding": "label_emb",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

_DOWN = re.compile(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)")
_DOWNSAMPLE = re.compile(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)")
_UP = re.compile(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)")
_UPSAMPLE = re.compile(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)")
_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def _rename_head(rest: str, table: dict[str, str]) -> str:
    """Rename the leading module path of ``rest`` (e.g. ``to_out.0.weight``) through ``table``."""
    for old in sorted(table, key=len, reverse=True):
        if rest.startswith(old + "."):
            return table[old] + rest[len(old):]
    return rest


def _unet_block(kind: str, rest: str) -> str:
    """LDM slot of a resnet (``.0``, renamed layers) or a transformer (``.1``, names unchanged)."""
    return f"0.{_rename_head(rest, _UNET_RESNET)}" if kind == "resnets" else f"1.{rest}"


def unet_key_to_ldm(key: str, layers_per_block: int, up_blocks_with_attention: set[int]) -> str:
    """One UNet2DConditionModel state-dict key → its ``model.diffusion_model.``-relative LDM name.

    Down block ``b`` holds ``layers_per_block`` resnets then a downsampler, ``input_blocks`` 1.. in order:
    resnet ``j`` is ``input_blocks[(L+1)*b + j + 1]``. Up blocks hold ``L+1`` resnets, ``output_blocks`` from 0;
    the upsampler shares the last one at slot 2 after a transformer, else at slot 1.
    """
    per = layers_per_block + 1
    if match := _DOWN.fullmatch(key):
        b, kind, j, rest = match.groups()
        return f"input_blocks.{per * int(b) + int(j) + 1}.{_unet_block(kind, rest)}"
    if match := _DOWNSAMPLE.fullmatch(key):
        b, rest = match.groups()
        return f"input_blocks.{per * int(b) + layers_per_block + 1}.0.op.{rest}"
    if match := _UP.fullmatch(key):
        b, kind, j, rest = match.groups()
        return f"output_blocks.{per * int(b) + int(j)}.{_unet_block(kind, rest)}"
    if match := _UPSAMPLE.fullmatch(key):
        b, rest = match.groups()
        slot = 2 if int(b) in up_blocks_with_attention else 1
        return f"output_blocks.{per * int(b) + layers_per_block}.{slot}.conv.{rest}"
    if match := _MID.fullmatch(key):
        kind, k, rest = match.groups()
        index = 2 * int(k) if kind == "resnets" else 2 * int(k) + 1  # resnet, transformer, resnet
        return f"middle_block.{index}.{_rename_head(rest, _UNET_RESNET) if kind == 'resnets' else rest}"
    module, _, param = key.rpartition(".")
    if module in _UNET_TOP:
        return f"{_UNET_TOP[module]}.{param}"
    raise ValueError(f"no LDM name for UNet key {key!r}")


def vae_key_to_ldm(key: str, num_up_blocks: int) -> str:
    """One AutoencoderKL key → its ``first_stage_model.``-relative LDM name (decoder levels are reversed)."""
    side, _, rest = key.partition(".")
    if side not in ("encoder", "decoder"):
        return key  # quant_conv, post_quant_conv
    rest = re.sub(r"^down_blocks\.(\d+)\.resnets\.", r"down.\1.block.", rest)
    rest = re.sub(r"^down_blocks\.(\d+)\.downsamplers\.0\.", r"down.\1.downsample.", rest)
    level = lambda m: num_up_blocks - 1 - int(m[1])  # noqa: E731 - LDM counts decoder levels bottom-up
    rest = re.sub(r"^up_blocks\.(\d+)\.resnets\.", lambda m: f"up.{level(m)}.block.", rest)
    rest = re.sub(r"^up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"up.{level(m)}.upsample.", rest)
    rest = re.sub(r"^mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", rest)
    if rest.startswith("mid_block.attentions.0."):
        rest = "mid.attn_1." + _rename_head(rest[len("mid_block.attentions.0."):], _VAE_ATTENTION)
    rest = rest.replace(".conv_shortcut.", ".nin_shortcut.")
    if rest.startswith("conv_norm_out."):
        rest = "norm_out." + rest[len("conv_norm_out."):]
    return f"{side}.{rest}"


def _put(out: dict[str, torch.Tensor], key: str, tensor: torch.Tensor, dtype: torch.dtype | None) -> None:
    if key in out:
        raise ValueError(f"two tensors map to LDM key {key!r}")
    tensor = tensor.detach()
    if tensor.device.type != "meta":  # meta models give a shape-only layout, handy for checks
        tensor = tensor.to("cpu")
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    out[key] = tensor.contiguous()


def unet_to_ldm(unet, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    layers = unet.config.layers_per_block
    if not isinstance(layers, int):
        raise ValueError(f"per-block layers_per_block {layers!r} has no LDM layout diffusers can read")
    with_attention = {b for b, block in enumerate(unet.up_blocks) if getattr(block, "attentions", None)}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in unet.state_dict().items():
        _put(out, UNET_PREFIX + unet_key_to_ldm(key, layers, with_attention), tensor, dtype)
    return out


def vae_to_ldm(vae, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """VAE tensors; the mid-block attention's linear q/k/v/proj_out weights become 1×1 convs, as in LDM."""
    out: dict[str, torch.Tensor] = {}
    num_up = len(vae.config.up_block_types)
    for key, tensor in vae.state_dict().items():
        name = vae_key_to_ldm(key, num_up)
        if ".mid.attn_1." in name and name.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            tensor = tensor[:, :, None, None]
        _put(out, VAE_PREFIX + name, tensor, dtype)
    return out


def text_encoder_to_ldm(text_encoder, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """CLIP tensors under ``text_model.`` (flattened CLIPTextModel of transformers ≥ 5.6 included).

    Also writes the ``position_ids`` buffer, as real SD-1.x files carry it (diffusers ignores it on load).
    """
    out: dict[str, torch.Tensor] = {}
    tensors = dict(text_encoder.state_dict())
    tensors.update({k: v for k, v in text_encoder.named_buffers() if k.endswith("embeddings.position_ids")})
    for key, tensor in tensors.items():
        name = key if key.startswith("text_model.") else "text_model." + key
        _put(out, CLIP_PREFIX + name, tensor, dtype)
    return out


def ldm_state_dict(unet, vae, text_encoder, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The whole SD-1.x single-file state dict (no EMA copy, no scheduler buffers)."""
    return {**unet_to_ldm(unet, dtype), **vae_to_ldm(vae, dtype), **text_encoder_to_ldm(text_encoder, dtype)}


def check_against_diffusers(checkpoint: dict[str, torch.Tensor], unet, vae, text_encoder) -> None:
    """Run diffusers' LDM → diffusers converters on ``checkpoint``; raise unless every tensor comes back."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    clip = convert_ldm_clip_checkpoint(checkpoint)
    if not hasattr(text_encoder, "text_model"):  # what diffusers does for the flattened CLIPTextModel
        clip = {k.removeprefix("text_model."): v for k, v in clip.items()}
    buffers = {k for k, _ in text_encoder.named_buffers()}
    try:
        parts = {
            "unet": (convert_ldm_unet_checkpoint(checkpoint, unet.config), unet.state_dict(), set()),
            "vae": (convert_ldm_vae_checkpoint(checkpoint, vae.config), vae.state_dict(), set()),
            "text_encoder": (clip, text_encoder.state_dict(), buffers),
        }
    except KeyError as error:
        raise ValueError(f"diffusers' converter fails on this layout: missing {error}") from error
    for name, (back, want, ignorable) in parts.items():
        missing = sorted(want.keys() - back.keys())
        extra = sorted(back.keys() - want.keys() - ignorable)
        wrong = [k for k in want.keys() & back.keys()
                 if not torch.equal(back[k].cpu(), want[k].cpu().to(back[k].dtype))]
        if missing or extra or wrong:
            raise ValueError(f"diffusers would not read the {name} back: missing {missing[:5]}, "
                             f"unexpected {extra[:5]}, changed {sorted(wrong)[:5]}")


def save_ldm_single_file(unet, vae, text_encoder, path, dtype: torch.dtype | None = None) -> Path:
    """Write ``unet``/``vae``/``text_encoder`` to ``path`` as an SD-1.x LDM ``.safetensors`` file; return the path.

    ``dtype`` (e.g. ``torch.float16``, as most shared files) casts floating tensors; default keeps them.
    Load it back with ``StableDiffusionPipeline.from_single_file(path, config=<diffusers folder>,
    local_files_only=True)``. The file is written to a temporary name beside ``path`` and moved into place.
    """
    path = Path(path)
    checkpoint = ldm_state_dict(unet, vae, text_encoder, dtype)
    check_against_diffusers(checkpoint, unet, vae, text_encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(checkpoint, tmp, metadata={"format": "pt"})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
