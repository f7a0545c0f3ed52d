"""The embedded tiny stand-in: fast to build, SD-shaped, and round-trips through a diffusers folder;
plus the full-size SD-1.5 shapes from the bundled configs, built on the meta device."""
from __future__ import annotations

import time

import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel

from sms.models import ModelSpec, load_stack, tiny
from sms.models.configs import sd15_component_config
from sms.models.tokenizer import sd_clip_tokenizer


def _inputs(batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, 4, 8, 8, generator=generator)
    t = torch.tensor([10, 700][:batch])
    emb = torch.randn(batch, 77, tiny.TINY_CROSS_DIM, generator=generator)
    return z, t, emb


def _save_tiny_pipeline(folder, seed: int = 0):
    pipe = StableDiffusionPipeline(
        vae=tiny.build_tiny_vae(seed + 1), text_encoder=tiny.build_tiny_text_encoder(seed + 2),
        tokenizer=sd_clip_tokenizer(), unet=tiny.build_tiny_unet(seed), scheduler=tiny.build_tiny_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder


def test_tiny_stack_builds_fast():
    load_stack(ModelSpec())  # warm: imports, tokenizer vocabulary
    start = time.perf_counter()
    stack = load_stack(ModelSpec())
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"tiny stack took {elapsed:.2f} s"
    assert stack.spec.base == "tiny"
    assert stack.style_lora_path is not None  # the stand-in LoRA is attached by default


def test_tiny_components_are_sd_shaped(tiny_stack):
    unet, vae, text_encoder = tiny_stack.unet, tiny_stack.vae, tiny_stack.text_encoder
    assert unet.config.in_channels == 4 and unet.config.cross_attention_dim == tiny.TINY_CROSS_DIM
    base_params = sum(p.numel() for n, p in unet.named_parameters() if "lora_" not in n)
    assert 0.5e6 < base_params < 3e6
    assert text_encoder.config.vocab_size == 49408 and text_encoder.config.max_position_embeddings == 77
    assert vae.config.scaling_factor == pytest.approx(0.18215)
    with torch.no_grad():
        image = torch.rand(1, 3, tiny.TINY_IMAGE_SIZE, tiny.TINY_IMAGE_SIZE) * 2 - 1
        latent = vae.encode(image).latent_dist.mean
        assert tuple(latent.shape) == (1, 4, 8, 8)
        assert tuple(vae.decode(latent).sample.shape) == (1, 3, 64, 64)
    emb = tiny_stack.embed(["a photo of a cat", "watercolor style"])
    assert emb.dtype == torch.float32 and tuple(emb.shape) == (2, 77, tiny.TINY_CROSS_DIM)
    assert tiny_stack.scheduler.config.num_train_timesteps == 1000


def test_tiny_builders_are_deterministic():
    a, b = tiny.build_tiny_unet(), tiny.build_tiny_unet()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other = tiny.build_tiny_unet(seed=7)
    assert not torch.equal(a.conv_in.weight, other.conv_in.weight)


def test_tiny_style_lora_file(tmp_path):
    path = tiny.write_tiny_style_lora(tmp_path / "lora.safetensors")
    state = load_file(str(path))
    downs = [k for k in state if k.endswith(".lora_down.weight")]
    assert downs and all(k.startswith(("lora_unet_", "lora_te_")) for k in state)
    assert any(k.startswith("lora_te_") for k in downs)
    assert {state[k].shape[0] for k in downs} == {tiny.TINY_LORA_RANK}
    assert {float(v) for k, v in state.items() if k.endswith(".alpha")} == {tiny.TINY_LORA_ALPHA}
    mtime = path.stat().st_mtime_ns
    assert tiny.write_tiny_style_lora(path) == path and path.stat().st_mtime_ns == mtime  # idempotent


def test_save_pretrained_round_trip(tmp_path):
    folder = _save_tiny_pipeline(tmp_path / "tiny-sd")
    assert (folder / "model_index.json").is_file()
    stack = load_stack(ModelSpec(base=str(folder)))
    assert stack.style_lora_path is None  # a real base gets no stand-in LoRA
    z, t, emb = _inputs()
    unet, vae, text_encoder = tiny.build_tiny_unet(), tiny.build_tiny_vae(), tiny.build_tiny_text_encoder()
    ids = sd_clip_tokenizer()(["a photo of a cat"], padding="max_length", max_length=77,
                              return_tensors="pt").input_ids
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(stack.denoisers.real(z, t, emb), unet(z, t, encoder_hidden_states=emb).sample)
        assert torch.equal(stack.denoisers.style(z, t, emb), unet(z, t, encoder_hidden_states=emb).sample)
        assert torch.equal(stack.text_encoder(ids)[0], text_encoder(ids)[0])
        assert torch.equal(stack.vae.encode(image).latent_dist.mean, vae.encode(image).latent_dist.mean)
        latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
        assert torch.equal(stack.vae.decode(latent).sample, vae.decode(latent).sample)
    assert stack.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    for key in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type"):
        assert stack.scheduler.config[key] == tiny.build_tiny_scheduler().config[key]
    assert len(stack.fingerprint()["base"]) == 64  # sha256 of the folder's UNet weights


@pytest.mark.parametrize("component, build, expected", [
    ("unet", lambda c: UNet2DConditionModel.from_config(c), 859_520_964),
    ("vae", lambda c: AutoencoderKL.from_config(c), 83_653_863),
    ("text_encoder", lambda c: CLIPTextModel(CLIPTextConfig(**c)), 123_060_480),
])
def test_sd15_parameter_counts_on_meta(component, build, expected):
    with torch.device("meta"):
        model = build(sd15_component_config(component))
    params = list(model.parameters())
    assert all(p.device.type == "meta" for p in params)
    assert sum(p.numel() for p in params) == expected
