"""Style LoRA files change the style UNet exactly as an explicit W + s·(alpha/rank)·up·down merge does."""
from __future__ import annotations

import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

from sms.models import ModelSpec, load_stack, tiny
from sms.models.stack import tiny_style_lora_path
from sms.models.tokenizer import sd_clip_tokenizer

SCALE = 0.8
STYLE_SEED = 10  # the separate style base: tiny shapes, different random weights
DIFFUSERS_RANK, DIFFUSERS_ALPHA = 4, 2.0
CLOSE = dict(rtol=1e-5, atol=1e-5)


def _inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 4, 8, 8, generator=generator)
    emb = torch.randn(2, 77, tiny.TINY_CROSS_DIM, generator=generator)
    return z, torch.tensor([10, 700]), emb


def _eps(unet, z, t, emb):
    with torch.no_grad():
        return unet(z, t, encoder_hidden_states=emb).sample


def _ids():
    return sd_clip_tokenizer()(["a photo of a cat"], padding="max_length", max_length=77,
                               return_tensors="pt").input_ids


def _te_out(text_encoder):
    with torch.no_grad():
        return text_encoder(_ids())[0]


def _kohya_merge(model, state, prefix: str, scale: float) -> int:
    """W += scale·(alpha/rank)·up·down for every ``<prefix><module path with _>`` entry; returns modules merged."""
    by_flat_name = {}
    for name, module in model.named_modules():
        flat = name.replace(".", "_")
        by_flat_name[flat] = module
        by_flat_name.setdefault("text_model_" + flat, module)  # transformers 5 CLIPTextModel has no text_model.
    merged = 0
    with torch.no_grad():
        for key, down in state.items():
            if not (key.startswith(prefix) and key.endswith(".lora_down.weight")):
                continue
            stem = key[: -len(".lora_down.weight")]
            module = by_flat_name[stem[len(prefix):]]
            up, alpha = state[f"{stem}.lora_up.weight"], float(state[f"{stem}.alpha"])
            module.weight += scale * (alpha / down.shape[0]) * (up @ down)
            merged += 1
    return merged


def _tiny_lora_state():
    return load_file(str(tiny_style_lora_path()))


@pytest.fixture(scope="module")
def style_base(tmp_path_factory):
    """A saved tiny pipeline with other random weights than the 'tiny' base (UNet, VAE and text encoder)."""
    folder = tmp_path_factory.mktemp("style-base")
    StableDiffusionPipeline(
        vae=tiny.build_tiny_vae(STYLE_SEED + 1), text_encoder=tiny.build_tiny_text_encoder(STYLE_SEED + 2),
        tokenizer=sd_clip_tokenizer(), unet=tiny.build_tiny_unet(STYLE_SEED), scheduler=tiny.build_tiny_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def diffusers_lora(tmp_path_factory):
    """A diffusers/peft-format LoRA (``unet.<path>.lora_A/B.weight``, alpha in the adapter metadata), written
    with ``save_lora_weights``; it targets other modules than the kohya stand-in (incl. feed-forward)."""
    unet = tiny.build_tiny_unet()
    generator = torch.Generator().manual_seed(5)
    layers, targets = {}, []
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(("attn1.to_k", "attn2.to_out.0", "ff.net.2")):
            layers[f"{name}.lora_A.weight"] = torch.randn(DIFFUSERS_RANK, module.in_features, generator=generator) * 0.2
            layers[f"{name}.lora_B.weight"] = torch.randn(module.out_features, DIFFUSERS_RANK, generator=generator) * 0.2
            targets.append(name)
    folder = tmp_path_factory.mktemp("diffusers-lora")
    StableDiffusionPipeline.save_lora_weights(
        str(folder), unet_lora_layers=layers,
        unet_lora_adapter_metadata={"r": DIFFUSERS_RANK, "lora_alpha": DIFFUSERS_ALPHA, "target_modules": targets})
    path = folder / "pytorch_lora_weights.safetensors"
    assert load_file(str(path)).keys() == {f"unet.{k}" for k in layers}
    return str(path), layers


def _diffusers_merge(unet, layers, scale: float) -> None:
    modules = dict(unet.named_modules())
    with torch.no_grad():
        for key, down in layers.items():
            if key.endswith(".lora_A.weight"):
                name = key[: -len(".lora_A.weight")]
                up = layers[f"{name}.lora_B.weight"]
                modules[name].weight += scale * (DIFFUSERS_ALPHA / DIFFUSERS_RANK) * (up @ down)


def _assert_style_is_merge(stack, expected_unet, real_unet):
    z, t, emb = _inputs()
    style, real = stack.denoisers.style(z, t, emb), stack.denoisers.real(z, t, emb)
    expected = _eps(expected_unet, z, t, emb)
    torch.testing.assert_close(style, expected, **CLOSE)
    assert torch.equal(real, _eps(real_unet, z, t, emb))  # the real UNet is untouched
    assert (style - real).abs().max() > 1e-2  # the LoRA did something measurable


def test_kohya_lora_shared_base_equals_hand_merge():
    stack = load_stack(ModelSpec(style_lora=str(tiny_style_lora_path()), lora_scale=SCALE))
    assert stack.denoisers.shared and stack.denoisers.style_adapter == "style"
    expected = tiny.build_tiny_unet()
    assert _kohya_merge(expected, _tiny_lora_state(), "lora_unet_", SCALE) == 24
    _assert_style_is_merge(stack, expected, tiny.build_tiny_unet())


def test_kohya_lora_scale_is_applied():
    stack = load_stack(ModelSpec(lora_scale=0.3))  # the stand-in LoRA by default
    expected = tiny.build_tiny_unet()
    _kohya_merge(expected, _tiny_lora_state(), "lora_unet_", 0.3)
    _assert_style_is_merge(stack, expected, tiny.build_tiny_unet())


def test_kohya_lora_separate_style_base(style_base):
    stack = load_stack(ModelSpec(style_base=style_base, style_lora=str(tiny_style_lora_path()), lora_scale=SCALE))
    denoisers = stack.denoisers
    assert not denoisers.shared and denoisers.style_unet is not denoisers.unet
    assert not any(".style" in n or "style_merge" in n for n, _ in denoisers.unet.named_parameters())
    assert not any("lora_" in n for n, _ in denoisers.style_unet.named_parameters())  # merged, no adapter left
    expected = tiny.build_tiny_unet(STYLE_SEED)
    _kohya_merge(expected, _tiny_lora_state(), "lora_unet_", SCALE)
    _assert_style_is_merge(stack, expected, tiny.build_tiny_unet())
    # spec §2: text encoder and VAE come from the style checkpoint (its text-encoder LoRA keys skipped)
    assert torch.equal(_te_out(stack.text_encoder), _te_out(tiny.build_tiny_text_encoder(STYLE_SEED + 2)))
    style_vae = tiny.build_tiny_vae(STYLE_SEED + 1)
    for (name, value), reference in zip(stack.vae.state_dict().items(), style_vae.state_dict().values()):
        assert torch.equal(value, reference), name


def test_diffusers_lora_shared_base_equals_hand_merge(diffusers_lora):
    path, layers = diffusers_lora
    stack = load_stack(ModelSpec(style_lora=path, lora_scale=SCALE))
    expected = tiny.build_tiny_unet()
    _diffusers_merge(expected, layers, SCALE)
    _assert_style_is_merge(stack, expected, tiny.build_tiny_unet())


def test_diffusers_lora_separate_style_base(diffusers_lora, style_base):
    path, layers = diffusers_lora
    stack = load_stack(ModelSpec(style_base=style_base, style_lora=path, lora_scale=SCALE))
    assert not stack.denoisers.shared
    expected = tiny.build_tiny_unet(STYLE_SEED)
    _diffusers_merge(expected, layers, SCALE)
    _assert_style_is_merge(stack, expected, tiny.build_tiny_unet())


def test_text_encoder_lora_skipped_by_default(tiny_stack):
    assert not tiny_stack.spec.apply_text_encoder_lora
    assert any(k.startswith("lora_te_") for k in _tiny_lora_state())  # there is something to skip
    assert torch.equal(_te_out(tiny_stack.text_encoder), _te_out(tiny.build_tiny_text_encoder()))


def test_text_encoder_lora_applied_on_request():
    stack = load_stack(ModelSpec(apply_text_encoder_lora=True, lora_scale=SCALE))
    assert not any("lora_" in n for n, _ in stack.text_encoder.named_parameters())  # fused, adapter removed
    expected = tiny.build_tiny_text_encoder()
    assert _kohya_merge(expected, _tiny_lora_state(), "lora_te_", SCALE) == 4  # q, k, v, out_proj
    got = _te_out(stack.text_encoder)
    torch.testing.assert_close(got, _te_out(expected), **CLOSE)
    assert (got - _te_out(tiny.build_tiny_text_encoder())).abs().max() > 1e-2
    assert torch.equal(got, _te_out(load_stack(ModelSpec(apply_text_encoder_lora=True, lora_scale=SCALE)).text_encoder))
    # the UNet part is unaffected by the flag
    expected_unet = tiny.build_tiny_unet()
    _kohya_merge(expected_unet, _tiny_lora_state(), "lora_unet_", SCALE)
    _assert_style_is_merge(stack, expected_unet, tiny.build_tiny_unet())


def test_text_encoder_lora_applied_to_style_checkpoint(style_base):
    stack = load_stack(ModelSpec(style_base=style_base, style_lora=str(tiny_style_lora_path()),
                                 apply_text_encoder_lora=True, lora_scale=SCALE))
    expected = tiny.build_tiny_text_encoder(STYLE_SEED + 2)
    _kohya_merge(expected, _tiny_lora_state(), "lora_te_", SCALE)
    torch.testing.assert_close(_te_out(stack.text_encoder), _te_out(expected), **CLOSE)
