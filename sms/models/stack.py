"""One typed entry point: ``load_stack(ModelSpec)`` → everything a score-distillation method needs."""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from peft import LoraConfig
from transformers import CLIPTextModel, CLIPTokenizer

from sms.models.denoisers import FAKE, STYLE, Denoisers
from sms.models.loading import TINY, BaseComponents, load_base
from sms.models.lora import attach_style_lora, merge_style_lora
from sms.weights import reference_digest

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass
class FakeLoraConfig:
    """The trainable fake score's LoRA (spec §2): peft default init, so ε_fake = ε_real at start."""

    rank: int = 8
    alpha: float = 32.0
    target_modules: tuple[str, ...] = ("to_q", "to_v")


@dataclass
class ModelSpec:
    base: str = TINY                      # 'tiny', hub id, diffusers folder, or single .safetensors file
    style_base: str | None = None         # None: the style UNet shares the base weights
    style_lora: str | None = None         # kohya/Civitai or diffusers LoRA file; None for 'tiny' = stand-in
    lora_scale: float = 0.8
    apply_text_encoder_lora: bool = False
    fake_lora: FakeLoraConfig = field(default_factory=FakeLoraConfig)
    dtype: str = "float32"                # frozen weights; LoRA parameters and latents stay fp32
    device: str = "cpu"
    allow_pickle: bool = False
    single_file_config: str | None = None  # diffusers config folder for a single-file base (default: bundled SD-1.5)
    style_base_config: str | None = None   # the same for a single-file style base
    with_fake: bool = True
    channels_last: bool = False           # UNet activations in channels-last memory format
    compile: bool = False                 # torch.compile the UNet(s) (first calls are slow; CUDA is where it pays)
    compile_mode: str | None = None       # torch.compile mode: None, "reduce-overhead" (CUDA graphs), "max-autotune"
    tf32: bool = False                    # CUDA: fp32 UNet matmuls/convolutions on TF32 tensor cores
    # the release's style LoRA merge: into a copy of the UNet, up·down formed in fp16 (sms.deviations:
    # fp16_lora_merge); off: an adapter on the shared UNet, or an fp32 merge into a separate style base
    release_lora_merge: bool = False
    # weights of single methods (sms.stylizer): an SD-1.5 ControlNet (diffusers folder or single file; 'tiny':
    # a seeded stand-in) for Style-LoRA + ControlNet; VGG-19 (torchvision state dict; 'tiny') for Gatys
    controlnet: str | None = None
    vgg19: str | None = None

    @property
    def shares_base(self) -> bool:
        return self.style_base in (None, self.base)


@dataclass
class ModelStack:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    scheduler: DDIMScheduler
    denoisers: Denoisers
    spec: ModelSpec
    style_lora_path: str | None

    @property
    def unet(self) -> UNet2DConditionModel:
        return self.denoisers.unet

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """CLIP last hidden states, padded to 77 tokens, fp32 (the conditioning of every UNet call)."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0].float()

    def fingerprint(self) -> dict[str, str | None]:
        """sha256 of the weights actually used, for sidecars."""
        return {"base": reference_digest(self.spec.base), "style_base": reference_digest(self.spec.style_base),
                "style_lora": reference_digest(self.style_lora_path)}


def tiny_style_lora_path() -> Path:
    from sms.models.tiny import write_tiny_style_lora
    from sms.paths import cache_dir

    return write_tiny_style_lora(cache_dir() / "tiny" / "tiny_style_lora.safetensors")


def load_stack(spec: ModelSpec) -> ModelStack:
    dtype = DTYPES[spec.dtype]
    base = load_base(spec.base, dtype=dtype, allow_pickle=spec.allow_pickle,
                     single_file_config=spec.single_file_config)
    lora_path = spec.style_lora or (str(tiny_style_lora_path()) if spec.base == TINY else None)
    unet = base.unet
    style_unet, style_adapter, base = _style_network(spec, base, lora_path, dtype)
    if spec.with_fake:
        _add_fake_lora(unet, spec.fake_lora)
    for module in {id(m): m for m in (unet, style_unet, base.vae, base.text_encoder)}.values():
        module.requires_grad_(False)
        module.to(spec.device)
        module.eval()
    denoisers = Denoisers(unet, style_unet, style_adapter=style_adapter, tf32=spec.tf32)
    for param in denoisers.fake_parameters():
        param.data = param.data.float()
    for network in {id(m): m for m in (unet, style_unet)}.values():
        if spec.channels_last:
            network.to(memory_format=torch.channels_last)
        if spec.compile:
            network.compile(mode=spec.compile_mode)
    return ModelStack(base.tokenizer, base.text_encoder, base.vae, base.scheduler, denoisers, spec, lora_path)


def _style_network(spec: ModelSpec, base: BaseComponents, lora_path: str | None, dtype: torch.dtype):
    """(style UNet, its adapter on the shared UNet or None, the checkpoint whose tokenizer, text encoder, VAE
    and scheduler serve all three networks: the style checkpoint's, spec §2)."""
    if spec.shares_base and not (spec.release_lora_merge and lora_path):
        if lora_path:
            attach_style_lora(base.unet, lora_path, adapter_name=STYLE, scale=spec.lora_scale,
                              text_encoder=base.text_encoder if spec.apply_text_encoder_lora else None,
                              allow_pickle=spec.allow_pickle)
        return base.unet, (STYLE if lora_path else None), base
    style = base if spec.shares_base else load_base(
        spec.style_base, dtype=dtype, allow_pickle=spec.allow_pickle, single_file_config=spec.style_base_config)
    # release_lora_merge on a shared base: a merged copy, as the release deep-copies its pipeline
    style_unet = copy.deepcopy(base.unet) if spec.shares_base else style.unet
    if lora_path:
        merge_style_lora(style_unet, lora_path, scale=spec.lora_scale,
                         text_encoder=style.text_encoder if spec.apply_text_encoder_lora else None,
                         allow_pickle=spec.allow_pickle, half_product=spec.release_lora_merge)
    return style_unet, None, style


def _add_fake_lora(unet: UNet2DConditionModel, config: FakeLoraConfig) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # style + fake: intended
        unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights=True,
                                    target_modules=list(config.target_modules)), adapter_name=FAKE)
