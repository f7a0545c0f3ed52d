"""The three ε-networks on one shared UNet: real = adapters off, style = frozen LoRA, fake = trainable LoRA."""
from __future__ import annotations

import pytest
import torch

from sms.models import FakeLoraConfig, ModelSpec, load_stack, tiny


def _inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 4, 8, 8, generator=generator)
    emb = torch.randn(2, 77, tiny.TINY_CROSS_DIM, generator=generator)
    return z, torch.tensor([10, 700]), emb


def _plain_eps(z, t, emb):
    with torch.no_grad():
        return tiny.build_tiny_unet()(z, t, encoder_hidden_states=emb).sample


def test_adapters_disabled_is_base_unet_and_fake_starts_at_real(tiny_stack):
    denoisers = tiny_stack.denoisers
    z, t, emb = _inputs()
    plain = _plain_eps(z, t, emb)
    with torch.no_grad():
        fake = denoisers.fake(z, t, emb)
        real = denoisers.real(z, t, emb)
        style = denoisers.style(z, t, emb)
        real_again = denoisers.real(z, t, emb)
    assert torch.equal(real, plain)
    assert torch.equal(real_again, plain)
    assert torch.equal(fake, real)  # peft default init: lora_B = 0
    assert (style - real).abs().max() > 1e-2
    assert real.dtype == torch.float32 and real.shape == z.shape


def test_fake_lora_layout(tiny_stack):
    denoisers = tiny_stack.denoisers
    params = denoisers.fake_parameters()
    names = [n for n, _ in tiny_stack.unet.named_parameters() if ".fake." in n]
    assert len(params) == len(names) > 0
    assert all(n.rsplit(".", 3)[-4].endswith(("to_q", "to_v")) for n in names)
    rank = FakeLoraConfig().rank
    assert {p.shape[0] for n, p in tiny_stack.unet.named_parameters() if ".lora_A.fake." in n} == {rank}
    assert all(p.dtype == torch.float32 for p in params)
    assert not any(p.requires_grad for p in tiny_stack.vae.parameters())
    assert not any(p.requires_grad for p in tiny_stack.text_encoder.parameters())


def test_training_step_touches_only_the_fake_lora():
    stack = load_stack(ModelSpec())
    denoisers, unet = stack.denoisers, stack.unet
    z, t, emb = _inputs()
    with torch.no_grad():
        style_before = denoisers.style(z, t, emb)
        fake_before = denoisers.fake(z, t, emb)
    optimizer = torch.optim.AdamW(denoisers.fake_parameters(), lr=1e-2)
    out = denoisers.fake(z, t, emb, trainable=True)
    assert out.requires_grad
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    torch.nn.functional.mse_loss(out, target).backward()

    fake_ids = {id(p) for p in denoisers.fake_parameters()}
    assert all(p.grad is not None for p in denoisers.fake_parameters())
    assert any(p.grad.abs().sum() > 0 for p in denoisers.fake_parameters())
    others = [(n, p) for model in (unet, stack.text_encoder, stack.vae) for n, p in model.named_parameters()
              if id(p) not in fake_ids]
    assert others and all(p.grad is None for _, p in others), [n for n, p in others if p.grad is not None][:3]
    frozen_before = {n: p.detach().clone() for n, p in unet.named_parameters() if id(p) not in fake_ids}
    optimizer.step()

    assert all(torch.equal(p, frozen_before[n]) for n, p in unet.named_parameters() if id(p) not in fake_ids)
    with torch.no_grad():
        style_after = denoisers.style(z, t, emb)
        fake_after = denoisers.fake(z, t, emb)
        real_after = denoisers.real(z, t, emb)
    assert torch.equal(style_after, style_before)  # bit-identical
    assert (fake_after - fake_before).abs().max() > 1e-4
    assert torch.equal(real_after, _plain_eps(z, t, emb))  # adapters really off after a trainable call


def test_trainable_toggle_and_forward_count():
    stack = load_stack(ModelSpec())
    denoisers = stack.denoisers
    z, t, emb = _inputs()
    with denoisers.counting() as used:
        denoisers.fake(z, t, emb, trainable=True)
        assert all(p.requires_grad for p in denoisers.fake_parameters())
        with torch.no_grad():
            denoisers.real(z[:1], t[:1], emb[:1])
            denoisers.style(z, torch.tensor(500), emb)  # scalar t is broadcast
        assert used() == 5
    assert denoisers.forwards == 5


def test_bfloat16_weights_fp32_lora_and_outputs():
    stack = load_stack(ModelSpec(dtype="bfloat16"))
    denoisers = stack.denoisers
    fake_ids = {id(p) for p in denoisers.fake_parameters()}
    frozen = [p for n, p in stack.unet.named_parameters() if id(p) not in fake_ids and "lora_" not in n]
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    assert stack.unet.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in denoisers.fake_parameters())
    assert stack.vae.dtype == torch.bfloat16 and stack.text_encoder.dtype == torch.bfloat16
    z, t, emb = _inputs()
    with torch.no_grad():
        outs = [denoisers.real(z, t, emb), denoisers.style(z, t, emb), denoisers.fake(z, t, emb)]
    assert all(o.dtype == torch.float32 and torch.isfinite(o).all() for o in outs)
    torch.testing.assert_close(outs[0], _plain_eps(z, t, emb), rtol=0.1, atol=0.1)  # bf16 ≈ fp32
    assert torch.equal(outs[2], outs[0])  # fake at init == real, in bf16 too
    assert stack.embed(["a cat"]).dtype == torch.float32
    out = denoisers.fake(z, t, emb, trainable=True)
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in denoisers.fake_parameters())


def test_separate_style_base_keeps_fake_on_base_unet(tmp_path):
    from diffusers import StableDiffusionPipeline

    from sms.models.tokenizer import sd_clip_tokenizer

    StableDiffusionPipeline(
        vae=tiny.build_tiny_vae(), text_encoder=tiny.build_tiny_text_encoder(), tokenizer=sd_clip_tokenizer(),
        unet=tiny.build_tiny_unet(3), scheduler=tiny.build_tiny_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False).save_pretrained(str(tmp_path))
    stack = load_stack(ModelSpec(style_base=str(tmp_path)))
    denoisers = stack.denoisers
    assert not denoisers.shared and denoisers.style_adapter is None
    assert not any("lora_" in n for n, _ in denoisers.style_unet.named_parameters())
    assert denoisers.fake_parameters() and not any(p.requires_grad for p in denoisers.style_unet.parameters())
    z, t, emb = _inputs()
    with torch.no_grad():
        assert torch.equal(denoisers.fake(z, t, emb), denoisers.real(z, t, emb))
        assert torch.equal(denoisers.real(z, t, emb), _plain_eps(z, t, emb))


def test_fingerprint(tiny_stack):
    fingerprint = tiny_stack.fingerprint()
    assert fingerprint["base"] == "tiny" and fingerprint["style_base"] is None
    assert len(fingerprint["style_lora"]) == 64 and int(fingerprint["style_lora"], 16) >= 0


def test_seeded_stand_in_is_a_different_style_base():
    """'tiny:1' is a second, differently seeded tiny checkpoint: a style base ≠ the real base, no files."""
    from sms.models.loading import load_base, parse_stand_in

    assert parse_stand_in("tiny") == ("tiny", 0) and parse_stand_in("sd15-random:2") == ("sd15-random", 2)
    assert parse_stand_in("tiny:x") is None and parse_stand_in("runwayml/sd") is None
    again, other = load_base("tiny:0").unet, load_base("tiny:1").unet
    base = load_base("tiny").unet
    assert all(torch.equal(a, b) for a, b in zip(base.parameters(), again.parameters()))
    assert not torch.equal(base.conv_in.weight, other.conv_in.weight)
    stack = load_stack(ModelSpec(style_base="tiny:1"))
    assert not stack.denoisers.shared and stack.fingerprint()["style_base"] == "tiny:1"
    z, t, emb = _inputs()
    with torch.no_grad():
        assert not torch.allclose(stack.denoisers.style(z, t, emb), stack.denoisers.real(z, t, emb))


def test_tf32_switch_is_scoped():
    from sms.models import precision

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch < 2.9: legacy allow_tf32 flags")
    before = matmul.fp32_precision, conv.fp32_precision
    with precision.tf32(True):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    assert (matmul.fp32_precision, conv.fp32_precision) == before
    with precision.tf32(False):
        assert (matmul.fp32_precision, conv.fp32_precision) == before
