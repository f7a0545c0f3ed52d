"""The LDM single-file exporter: diffusers' own ``from_single_file`` must give back the exact components.

Everything is offline: the reload uses a config-only diffusers folder (weights deleted), so every tensor
that comes back was read from the exported file.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.loaders.single_file_utils import infer_diffusers_model_type
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from sms.models.configs import SD15_CONFIG_DIR, sd15_component_config
from sms.models.ldm_export import (
    CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    check_against_diffusers,
    ldm_state_dict,
    save_ldm_single_file,
)
from sms.models.tiny import (
    TINY_CROSS_DIM,
    build_tiny_scheduler,
    build_tiny_text_encoder,
    build_tiny_unet,
    build_tiny_vae,
)
from sms.models.tokenizer import sd_clip_tokenizer

COMPONENTS = ("unet", "vae", "text_encoder")


@contextmanager
def captured_logs(*names: str):
    """Collect WARNING+ records of the named loggers (diffusers' root logger does not propagate)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def load_single_file(path: Path, config_dir: Path) -> StableDiffusionPipeline:
    return StableDiffusionPipeline.from_single_file(
        str(path), config=str(config_dir), local_files_only=True, safety_checker=None
    )


@pytest.fixture(scope="module")
def original() -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=build_tiny_vae(),
        text_encoder=build_tiny_text_encoder(),
        tokenizer=sd_clip_tokenizer(),
        unet=build_tiny_unet(),
        scheduler=build_tiny_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.fixture(scope="module")
def config_dir(original, tmp_path_factory) -> Path:
    """The diffusers folder with its weights removed: configs, tokenizer and scheduler only."""
    folder = tmp_path_factory.mktemp("sd_config")
    original.save_pretrained(folder)
    for weights in [*folder.rglob("*.safetensors"), *folder.rglob("*.bin")]:
        weights.unlink()
    return folder


@pytest.fixture(scope="module")
def exported(original, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny-sd15.safetensors"
    return save_ldm_single_file(original.unet, original.vae, original.text_encoder, path)


@pytest.fixture(scope="module")
def reloaded(exported, config_dir):
    with captured_logs("diffusers", "transformers") as records:
        pipe = load_single_file(exported, config_dir)
    return pipe, records


def test_every_tensor_comes_back_identical(original, reloaded):
    pipe, _ = reloaded
    for name in COMPONENTS:
        want, got = getattr(original, name), getattr(pipe, name)
        assert type(got) is type(want)
        want_params, got_params = dict(want.named_parameters()), dict(got.named_parameters())
        assert got_params.keys() == want_params.keys(), name
        for key, tensor in want_params.items():
            assert got_params[key].device.type == "cpu", f"{name}.{key} was never loaded"
            assert torch.equal(got_params[key], tensor), f"{name}.{key}"
    assert pipe.vae.config.scaling_factor == original.vae.config.scaling_factor


def test_unet_forward_matches_exactly(original, reloaded):
    pipe, _ = reloaded
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, TINY_CROSS_DIM, generator=generator)
    timesteps = torch.tensor([999, 10])
    with torch.no_grad():
        want = original.unet(latents, timesteps, encoder_hidden_states=context).sample
        got = pipe.unet(latents, timesteps, encoder_hidden_states=context).sample
    assert want.abs().sum() > 0
    assert torch.equal(got, want)


def test_whole_pipeline_output_matches_exactly(original, reloaded):
    pipe, _ = reloaded
    assert type(pipe.scheduler) is type(original.scheduler)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(pipe.scheduler.config) == public(original.scheduler.config)
    assert pipe.tokenizer("a red apple").input_ids == original.tokenizer("a red apple").input_ids
    run = dict(prompt="a red apple", num_inference_steps=2, height=64, width=64, output_type="pt")
    want = original(**run, generator=torch.Generator().manual_seed(3)).images
    got = pipe(**run, generator=torch.Generator().manual_seed(3)).images
    assert torch.equal(got, want)


def test_reload_logs_no_warnings(reloaded):
    _, records = reloaded
    assert [record.getMessage() for record in records] == []


def test_unexpected_key_would_be_caught(exported, config_dir, tmp_path):
    """Negative control: the log capture above does see diffusers' unexpected-key warning."""
    tensors = load_file(exported)
    tensors[UNET_PREFIX + "input_blocks.1.1.bogus.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad))
    with captured_logs("diffusers") as records:
        load_single_file(bad, config_dir)
    assert any("were not used" in r.getMessage() and "bogus" in r.getMessage() for r in records)


def test_file_has_every_tensor_in_sd1_layout(original, exported):
    tensors = load_file(exported)
    counts = {name: len(getattr(original, name).state_dict()) for name in COMPONENTS}
    assert len(tensors) == sum(counts.values()) + 1  # + CLIP position_ids, as in real SD-1.x files
    by_prefix = {p: sum(k.startswith(p) for k in tensors) for p in (UNET_PREFIX, VAE_PREFIX, CLIP_PREFIX)}
    assert by_prefix == {
        UNET_PREFIX: counts["unet"], VAE_PREFIX: counts["vae"], CLIP_PREFIX: counts["text_encoder"] + 1
    }
    assert infer_diffusers_model_type(tensors) == "v1"
    # tiny UNet: layers_per_block 1 → down-sampler at input_blocks.2, up-sampler beside a resnet only (slot 1)
    assert UNET_PREFIX + "input_blocks.2.0.op.weight" in tensors
    assert UNET_PREFIX + "output_blocks.1.1.conv.weight" in tensors
    assert UNET_PREFIX + "output_blocks.2.1.proj_in.weight" in tensors
    attn = original.vae.encoder.mid_block.attentions[0].to_q.weight
    assert tensors[VAE_PREFIX + "encoder.mid.attn_1.q.weight"].shape == (*attn.shape, 1, 1)
    assert CLIP_PREFIX + "text_model.embeddings.position_embedding.weight" in tensors  # diffusers' CLIP marker


def test_write_is_atomic_and_overwrites(original, tmp_path):
    path = tmp_path / "out" / "model.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"old")
    assert save_ldm_single_file(original.unet, original.vae, original.text_encoder, path) == path
    assert len(load_file(path)) > 0
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]


def test_float16_export(original, tmp_path):
    path = save_ldm_single_file(original.unet, original.vae, original.text_encoder, tmp_path / "h.safetensors",
                                dtype=torch.float16)
    dtypes = {t.dtype for k, t in load_file(path).items() if not k.endswith("position_ids")}
    assert dtypes == {torch.float16}


def test_sd15_config_gives_the_real_sd15_key_set():
    """Shapes only (meta device): SD-1.5's config exports the 1,131 keys of v1-5-pruned-emaonly."""
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(sd15_component_config("unet"))
        vae = AutoencoderKL.from_config(sd15_component_config("vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(SD15_CONFIG_DIR / "text_encoder"))
    tensors = ldm_state_dict(unet, vae, text_encoder)
    assert len(tensors) == 1131
    assert sum(k.startswith(UNET_PREFIX) for k in tensors) == 686
    assert sum(k.startswith(VAE_PREFIX) for k in tensors) == 248
    for key in ("input_blocks.3.0.op.weight", "input_blocks.9.0.op.weight", "input_blocks.11.0.out_layers.3.weight",
                "middle_block.1.proj_in.weight", "middle_block.2.emb_layers.1.weight",
                "output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight", "output_blocks.8.2.conv.weight",
                "output_blocks.11.0.skip_connection.weight",
                "output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight"):
        assert UNET_PREFIX + key in tensors, key
    assert tensors[VAE_PREFIX + "decoder.mid.attn_1.proj_out.weight"].shape == (512, 512, 1, 1)
    assert infer_diffusers_model_type(tensors) == "v1"


@pytest.mark.parametrize(
    "unet_kwargs, vae_kwargs",
    [
        (  # three levels, two layers, attention only in the inner blocks, two transformer layers
            dict(block_out_channels=(32, 32, 64), layers_per_block=2,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=2, use_linear_projection=True),
            dict(block_out_channels=(16, 32), layers_per_block=2,
                 down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2),
        ),
        (  # one level, no down/up-sampling at all
            dict(block_out_channels=(32,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
                 up_block_types=("CrossAttnUpBlock2D",)),
            dict(block_out_channels=(16,), layers_per_block=1,
                 down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",)),
        ),
    ],
)
def test_other_shapes_convert_back_through_diffusers(unet_kwargs, vae_kwargs):
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, cross_attention_dim=TINY_CROSS_DIM, attention_head_dim=8,
                                norm_num_groups=16, **unet_kwargs)
    vae = AutoencoderKL(norm_num_groups=8, latent_channels=4, **vae_kwargs)
    text_encoder = build_tiny_text_encoder()
    check_against_diffusers(ldm_state_dict(unet, vae, text_encoder), unet, vae, text_encoder)


def test_layout_diffusers_cannot_read_is_refused(original):
    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 32), layers_per_block=(1, 2),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=TINY_CROSS_DIM, attention_head_dim=8, norm_num_groups=16)
    with pytest.raises(ValueError, match="layers_per_block"):
        ldm_state_dict(unet, original.vae, original.text_encoder)
