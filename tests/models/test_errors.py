"""Bad inputs fail fast (< 2 s) with a ModelLoadError whose message says what is wrong and what to do."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file

from sms.models import ModelLoadError, ModelSpec, load_stack, tiny
from sms.models.lora import attach_style_lora, read_lora
from sms.models.stack import tiny_style_lora_path
from sms.models.tokenizer import sd_clip_tokenizer

FAST_S = 2.0


def _fails(spec: ModelSpec, *fragments: str, limit_s: float = FAST_S) -> str:
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_stack(spec)
    elapsed = time.perf_counter() - start
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert elapsed < limit_s, f"took {elapsed:.2f} s to fail"
    return message


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Imports, the tokenizer vocabulary and the stand-in LoRA file are one-off costs, not part of failing."""
    tiny_style_lora_path()
    load_stack(ModelSpec())


def _write_kohya(path: Path, modules: dict[str, tuple[int, int]], *, with_tiny: bool = False) -> str:
    state = dict(load_file(str(tiny_style_lora_path()))) if with_tiny else {}
    generator = torch.Generator().manual_seed(0)
    for module, (fan_in, fan_out) in modules.items():
        key = f"lora_unet_{module}"
        state[f"{key}.lora_down.weight"] = torch.randn(4, fan_in, generator=generator)
        state[f"{key}.lora_up.weight"] = torch.randn(fan_out, 4, generator=generator)
        state[f"{key}.alpha"] = torch.tensor(4.0)
    save_file(state, str(path))
    return str(path)


def _truncate(source: Path, target: Path) -> str:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return str(target)


# --- missing models -------------------------------------------------------------------------------------------

def test_missing_folder(tmp_path):
    missing = tmp_path / "no-such-model"
    _fails(ModelSpec(base=str(missing)), "Cannot find the model", str(missing), "diffusers folder", "'tiny'")


def test_missing_checkpoint_file(tmp_path):
    missing = tmp_path / "model.safetensors"
    _fails(ModelSpec(base=str(missing)), "Cannot find the model", str(missing), ".safetensors")


def test_missing_style_base(tmp_path):
    _fails(ModelSpec(style_base=str(tmp_path / "gone")), "Cannot find the model", str(tmp_path / "gone"))


def test_folder_without_model_index(tmp_path):
    (tmp_path / "unet").mkdir()
    _fails(ModelSpec(base=str(tmp_path)), "model_index.json (missing)")


def test_missing_lora(tmp_path):
    missing = tmp_path / "style.safetensors"
    _fails(ModelSpec(style_lora=str(missing)), "Cannot find the style LoRA file", str(missing), "kohya")


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _fails(ModelSpec(base="someone/not-a-model"), "'someone/not-a-model'", "HF_HUB_OFFLINE",
                     "local diffusers folder", "single-file '.safetensors'")
    assert "no download tried" in message


# --- LoRAs for another architecture: refused, never a silent no-op ------------------------------------------

SDXL_NAMES = {  # SDXL's kohya names: no counterpart in an SD-1.5-shaped UNet
    "input_blocks_4_1_transformer_blocks_0_attn1_to_q": (640, 640),
    "middle_block_1_transformer_blocks_0_attn2_to_k": (2048, 1280),
}
SDXL_SHAPES = {  # names that exist here, shapes that do not (SDXL widths / 2048-d cross-attention)
    "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (640, 640),
    "down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (2048, 320),
}


@pytest.mark.parametrize("modules, with_tiny", [
    (SDXL_NAMES, False), (SDXL_SHAPES, False), ({**SDXL_NAMES, **SDXL_SHAPES}, True),
], ids=["names", "shapes", "mixed-with-valid"])
def test_lora_for_another_architecture(tmp_path, modules, with_tiny):
    path = _write_kohya(tmp_path / "sdxl.safetensors", modules, with_tiny=with_tiny)
    total = sum(1 for key in load_file(path) if key.startswith("lora_unet_") and key.endswith(".lora_down.weight"))
    assert total > len(modules) if with_tiny else total == len(modules)
    message = _fails(ModelSpec(style_lora=path), "does not fit this UNet", path, "SD-1.5",
                     f"{len(modules)} of its {total} UNet modules")
    assert "transformer_blocks.0.attn" in message  # names the offending modules


def test_lora_for_another_architecture_separate_style_base(tmp_path):
    folder = tmp_path / "style"
    StableDiffusionPipeline(
        vae=tiny.build_tiny_vae(), text_encoder=tiny.build_tiny_text_encoder(), tokenizer=sd_clip_tokenizer(),
        unet=tiny.build_tiny_unet(), scheduler=tiny.build_tiny_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False).save_pretrained(str(folder))
    path = _write_kohya(tmp_path / "sdxl.safetensors", SDXL_SHAPES)
    # this one first loads two real checkpoints (tiny + the style folder), so allow for that
    _fails(ModelSpec(style_base=str(folder), style_lora=path), "does not fit this UNet", limit_s=10.0)


def test_misfit_lora_leaves_unet_untouched(tmp_path):
    path = _write_kohya(tmp_path / "sdxl.safetensors", SDXL_SHAPES, with_tiny=True)
    unet = tiny.build_tiny_unet()
    with pytest.raises(ModelLoadError, match="does not fit"):
        attach_style_lora(unet, path, adapter_name="style", scale=1.0)
    assert not any(isinstance(m, BaseTunerLayer) for m in unet.modules())
    assert not getattr(unet, "peft_config", None)


def test_lora_without_unet_weights(tmp_path):
    state = {k: v for k, v in load_file(str(tiny_style_lora_path())).items() if k.startswith("lora_te_")}
    save_file(state, str(tmp_path / "te.safetensors"))
    _fails(ModelSpec(style_lora=str(tmp_path / "te.safetensors")), "has no UNet weights")


def test_lycoris_lora_refused(tmp_path):
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.hada_w1_a": torch.zeros(32, 4), f"{key}.hada_w1_b": torch.zeros(4, 32),
               f"{key}.alpha": torch.tensor(4.0)}, str(tmp_path / "loha.safetensors"))
    _fails(ModelSpec(style_lora=str(tmp_path / "loha.safetensors")), "not a LoRA diffusers can read", "LyCORIS")


# --- truncated files --------------------------------------------------------------------------------------------

def test_truncated_lora(tmp_path):
    path = _truncate(tiny_style_lora_path(), tmp_path / "half.safetensors")
    _fails(ModelSpec(style_lora=path), "The LoRA", "not a readable safetensors file", "truncated")


def test_truncated_single_file_checkpoint(tmp_path):
    full = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.build_tiny_unet().state_dict().items()}, str(full))
    path = _truncate(full, tmp_path / "half.safetensors")
    _fails(ModelSpec(base=path), "The checkpoint", "not a readable safetensors file", "truncated")


def test_truncated_weights_in_folder(tmp_path):
    folder = tmp_path / "model"
    StableDiffusionPipeline(
        vae=tiny.build_tiny_vae(), text_encoder=tiny.build_tiny_text_encoder(), tokenizer=sd_clip_tokenizer(),
        unet=tiny.build_tiny_unet(), scheduler=tiny.build_tiny_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False).save_pretrained(str(folder))
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    _truncate(weights, weights)
    _fails(ModelSpec(base=str(folder)), str(weights), "truncated")


# --- pickles ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pt", ".ckpt"])
def test_pickle_lora_refused_unless_allowed(tmp_path, suffix):
    path = tmp_path / f"style{suffix}"
    torch.save(load_file(str(tiny_style_lora_path())), str(path))
    _fails(ModelSpec(style_lora=str(path)), "Refusing to load the LoRA", f"'{suffix}'", "allow_pickle=True")
    stack = load_stack(ModelSpec(style_lora=str(path), allow_pickle=True))
    reference = load_stack(ModelSpec(style_lora=str(tiny_style_lora_path())))
    loaded = {n: p for n, p in stack.unet.named_parameters() if ".style." in n}
    expected = {n: p for n, p in reference.unet.named_parameters() if ".style." in n}
    assert loaded.keys() == expected.keys() and len(loaded) == 48
    assert all(torch.equal(loaded[n], expected[n]) for n in loaded)  # same LoRA as the .safetensors one


@pytest.mark.parametrize("suffix", [".ckpt", ".pt"])
def test_pickle_checkpoint_refused_unless_allowed(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    torch.save({"state_dict": {}}, str(path))
    _fails(ModelSpec(base=str(path)), "Refusing to load the checkpoint", f"'{suffix}'", "allow_pickle=True")
    _fails(ModelSpec(style_base=str(path)), "Refusing to load the checkpoint")
    # allowed: it gets past the refusal and is judged as a checkpoint (this one holds no SD weights)
    _fails(ModelSpec(base=str(path), allow_pickle=True), "Could not load the single-file checkpoint", str(path))


def test_read_lora_refuses_pickle_directly(tmp_path):
    path = tmp_path / "style.pt"
    torch.save(load_file(str(tiny_style_lora_path())), str(path))
    with pytest.raises(ModelLoadError, match="Refusing"):
        read_lora(path)
    state, alphas = read_lora(path, allow_pickle=True)
    assert any(k.startswith("unet.") for k in state) and alphas
