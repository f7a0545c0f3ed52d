"""The embedded default: SD-shaped components built from config with fixed seeds (nothing downloaded).

Shapes follow SD-1.5 so the real code path runs unchanged: a 4-level VAE maps a 64×64 image to a
4×8×8 latent (scaling 0.18215), the UNet is an ~1 M-parameter 2-level UNet2DConditionModel, and the
text encoder is a small CLIP with SD's full 49,408-token vocabulary and 77 positions.
Numbers produced with these models test the machinery, not the paper.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from sms.models.configs import sd15_scheduler_config

TINY_SEED = 0
TINY_CROSS_DIM = 32
TINY_IMAGE_SIZE = 64

TINY_UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=TINY_CROSS_DIM,
    attention_head_dim=8,
    norm_num_groups=32,
)

TINY_VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(16, 16, 32, 32),
    layers_per_block=1,
    norm_num_groups=8,
    latent_channels=4,
    sample_size=TINY_IMAGE_SIZE,
    scaling_factor=0.18215,
)

TINY_TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=TINY_CROSS_DIM,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=TINY_CROSS_DIM,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
)

# The stand-in style LoRA: kohya naming, rank 4, alpha 2 (so alpha/rank = 0.5 is exercised).
TINY_LORA_RANK = 4
TINY_LORA_ALPHA = 2.0
TINY_LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_v")
TINY_STYLE_PROMPT = "watercolor style"


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_tiny_unet(seed: int = TINY_SEED) -> UNet2DConditionModel:
    return _seeded(seed, lambda: UNet2DConditionModel(**TINY_UNET_CONFIG)).eval()


def build_tiny_vae(seed: int = TINY_SEED + 1) -> AutoencoderKL:
    return _seeded(seed, lambda: AutoencoderKL(**TINY_VAE_CONFIG)).eval()


def build_tiny_text_encoder(seed: int = TINY_SEED + 2) -> CLIPTextModel:
    return _seeded(seed, lambda: CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG))).eval()


def build_tiny_scheduler() -> DDIMScheduler:
    return DDIMScheduler.from_config(sd15_scheduler_config())


def tiny_style_lora_state_dict(unet: UNet2DConditionModel, seed: int = 1234) -> dict[str, torch.Tensor]:
    """A deterministic LoRA in kohya/Civitai naming (``lora_unet_<path>.lora_down.weight`` …).

    Includes text-encoder attention entries so that skipping (or applying) text-encoder keys is exercised.
    """
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if not isinstance(module, torch.nn.Linear) or not name.endswith(TINY_LORA_TARGETS):
            continue
        key = "lora_unet_" + name.replace(".", "_")
        tensors[f"{key}.lora_down.weight"] = torch.randn(TINY_LORA_RANK, module.in_features, generator=generator) * 0.2
        tensors[f"{key}.lora_up.weight"] = torch.randn(module.out_features, TINY_LORA_RANK, generator=generator) * 0.2
        tensors[f"{key}.alpha"] = torch.tensor(TINY_LORA_ALPHA)
    for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
        key = f"lora_te_text_model_encoder_layers_0_self_attn_{projection}"
        tensors[f"{key}.lora_down.weight"] = torch.randn(TINY_LORA_RANK, TINY_CROSS_DIM, generator=generator) * 0.2
        tensors[f"{key}.lora_up.weight"] = torch.randn(TINY_CROSS_DIM, TINY_LORA_RANK, generator=generator) * 0.2
        tensors[f"{key}.alpha"] = torch.tensor(TINY_LORA_ALPHA)
    return {key: value.contiguous() for key, value in tensors.items()}


def write_tiny_style_lora(path: Path) -> Path:
    """Write the stand-in style LoRA as a real kohya-format ``.safetensors`` file (idempotent)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(tiny_style_lora_state_dict(build_tiny_unet()), str(tmp), metadata={"ss_network_module": "networks.lora"})
        tmp.replace(path)
    return path
