"""Gradient contracts of SMS on the tiny models (issue: 'Gradient contracts')."""
import pytest
import torch

from sms.config import RunConfig, resolve
from sms.identity import build_identity_loss
from sms.loop import distillation_loss, gradient_scale
from sms.method import Prompts, StepState
from sms.models import ModelSpec, load_stack
from sms.refine import relevance_map
from sms.rng import RandomStreams
from sms.style_matching import SMSConfig, StyleMatchingScore
from sms.timesteps import Draw


def _state(z, z_src, step=0, seed=0):
    return StepState(step, 500, z, z_src, RandomStreams(seed, "img"))


def _latents(shape=(1, 4, 8, 8), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def test_equal_style_and_fake_scores_give_zero_gradient():
    stack = load_stack(ModelSpec(lora_scale=0.0))  # style adapter at scale 0 ≡ base ≡ fake at init
    method = StyleMatchingScore(SMSConfig(), stack, Prompts("watercolor style"))
    z, z_src = _latents()
    gradient = method.gradient(_state(z, z_src))
    assert gradient.forwards == 6
    assert torch.count_nonzero(gradient.g) == 0


def test_style_gradient_is_w_t_times_guided_difference(tiny_stack):
    method = StyleMatchingScore(SMSConfig(relevance=False), tiny_stack, Prompts("watercolor style", "a cat"))
    z, z_src = _latents()
    state = _state(z, z_src, step=3)
    gradient = method.gradient(state)
    eps = RandomStreams(0, "img").normal(3, "eps", z.shape)
    from sms.diffusion import add_noise, cfg, posterior_variance

    ab = method.schedule.alpha_bar(gradient.t)
    z_t = add_noise(z, eps, ab)
    t = torch.tensor(gradient.t)
    d = tiny_stack.denoisers
    with torch.no_grad():
        style = cfg(d.style(z_t, t, method.cond.target), d.style(z_t, t, method.cond.uncond), 4.5)
        fake = cfg(d.fake(z_t, t, method.cond.target), d.fake(z_t, t, method.cond.uncond), 4.5)
    expected = posterior_variance(method.schedule, gradient.t, gradient.t_prev) * (style - fake)
    assert gradient.t_prev == gradient.t - 2
    # batched (cond, uncond) vs separate calls differ in float32 rounding, amplified by CFG 4.5
    assert (gradient.g - expected).abs().max() < 1e-3 * expected.abs().max()
    assert gradient.g.abs().max() > 0


def test_relevance_map_range_and_flat_case():
    d = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(0))
    r = relevance_map(d)
    assert r.shape == d.shape
    for sample in r:
        assert sample.min() == 0 and sample.max() == 1
        assert torch.equal(sample[0], sample[3])  # one map broadcast to the channels
    expected = d[0].mean(0).abs()
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert torch.allclose(r[0, 0], expected)
    assert torch.equal(relevance_map(torch.ones(1, 4, 8, 8)), torch.ones(1, 4, 8, 8))


def test_relevance_map_inside_sms_is_in_unit_range(tiny_stack):
    method = StyleMatchingScore(SMSConfig(), tiny_stack, Prompts("watercolor style"))
    z, z_src = _latents()
    with torch.no_grad():
        _, _, edit = method._passes(z, z_src, torch.tensor(101))
    r = relevance_map(edit)
    assert r.min() == 0 and r.max() == 1 and r.shape == z.shape


def test_grad_trick_gradient_is_g_over_numel():
    resolved = resolve(RunConfig())
    z = torch.randn(1, 4, 8, 12, requires_grad=True)
    g = torch.randn(1, 4, 8, 12)
    distillation_loss(z, g, gradient_scale(resolved.loop, z)).backward()
    # z − sg(z − g) equals g up to float32 rounding of the subtraction (|z|·2⁻²⁴)
    assert torch.allclose(z.grad, g / z.numel(), rtol=1e-5, atol=1e-6 / z.numel())
    dds_like = resolve(RunConfig(loop_overrides={"grad_numerator": 2000.0})).loop
    z.grad = None
    distillation_loss(z, g, gradient_scale(dds_like, z)).backward()
    assert torch.allclose(z.grad, g * 2000.0 / (8 * 12), rtol=1e-5, atol=1e-6 * 2000.0 / (8 * 12))


@pytest.mark.parametrize("name", ["psr", "psr_fixed"])
def test_psr_gradient_is_zero_at_source(name):
    loss = build_identity_loss(name)
    z_src = torch.randn(1, 4, 8, 8)
    z = z_src.clone().requires_grad_(True)
    value = loss(z, z_src, 301)
    value.backward()
    assert value == 0 and torch.count_nonzero(z.grad) == 0
    z2 = (z_src + 0.1).requires_grad_(True)
    loss(z2, z_src, 301).backward()
    assert z2.grad.abs().sum() > 0


def test_psr_l2_variant_differs_from_l1():
    z_src, z = _latents()
    l1 = build_identity_loss("psr")(z, z_src, 301)
    l2 = build_identity_loss("psr", norm="l2")(z, z_src, 301)
    assert l1 > 0 and l2 > 0 and not torch.isclose(l1, l2)


def test_landscape_latent_runs_through_every_t(tiny_stack):
    z_src, z = _latents((1, 4, 64, 96))
    psr = build_identity_loss("psr")
    for t in range(1, 1000, 2):
        assert torch.isfinite(psr(z, z_src, t))
    method = StyleMatchingScore(SMSConfig(), tiny_stack, Prompts("watercolor style"))
    small_src, small = _latents((1, 4, 8, 12))
    for t in (21, 249, 499, 979):
        method.draw_timestep = lambda state, *a, t=t, **k: Draw(t, t - 2)
        gradient = method.gradient(_state(small, small_src))
        assert gradient.g.shape == small.shape and torch.isfinite(gradient.g).all()


def test_nonfinite_entries_are_counted_and_zeroed():
    from sms.method import count_nonfinite

    g = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    cleaned, count = count_nonfinite(g)
    assert count == 3 and cleaned.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_fake_update_trains_only_the_fake_lora():
    stack = load_stack(ModelSpec())
    method = StyleMatchingScore(SMSConfig(), stack, Prompts("watercolor style"))
    z, z_src = _latents()
    before = {n: p.detach().clone() for n, p in stack.unet.named_parameters()}
    info = method.update(_state(z, z_src, step=5))
    assert info["forwards"] == 1 and 21 <= info["fake_t"] <= 499
    changed = {n for n, p in stack.unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".fake." in n for n in changed)
