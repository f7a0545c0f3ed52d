"""G_θ (issue 14, part A): identity at initialisation, the gradient reaching θ, per-sample t and ε."""
from __future__ import annotations

import pytest
import torch

from sms.config import LoopConfig, RunConfig, resolve
from sms.generator import DEFAULT, TINY, LatentGenerator
from sms.generator_step import batch_streams, generator_step
from sms.loop import gradient_scale
from sms.method import Prompts, StepState
from sms.rng import RandomStreams
from workflow.discovery import load_methods

load_methods()  # registers the baselines (sds, dds, pds, vsd) beside sms

METHODS = ("sms", "sds", "dds", "pds", "vsd")
IDS = ("crop-a", "crop-b")


def _latents(shape=(2, 4, 8, 8), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def _method(name, stack, **method_overrides):
    run = resolve(RunConfig(method=name))
    config = run.method_config
    for key, value in method_overrides.items():
        setattr(config, key, value)
    method = run.method_cls(config, stack, Prompts("watercolor style", "a cat"))
    method.begin(RandomStreams(0, "generator"))
    return method


@pytest.mark.parametrize("config", [DEFAULT, TINY], ids=["default", "tiny"])
@pytest.mark.parametrize("shape", [(2, 4, 16, 16), (1, 4, 10, 14)])
def test_generator_is_exactly_the_identity_at_initialisation(config, shape):
    generator = LatentGenerator(config, generator=torch.Generator().manual_seed(0))
    z = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(generator(z), z)


def test_default_size_is_near_the_papers_43_megabytes():
    assert 40 < LatentGenerator(DEFAULT).describe()["fp32_megabytes"] < 46


def test_seeded_initialisation_is_reproducible():
    first, second = (LatentGenerator(TINY, generator=torch.Generator().manual_seed(3)) for _ in range(2))
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_gradient_reaching_theta_is_the_vjp_of_g_summed_over_the_batch(tiny_stack):
    generator = LatentGenerator(TINY, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # leave the identity so every parameter, not only conv_out, sees a gradient
        generator.unet.conv_out.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    z_src, _ = _latents()
    method = _method("sds", tiny_stack)
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.0)  # lr 0: θ stays, its .grad is kept
    loop = LoopConfig(lambda_identity=0.0)
    _, gradient = generator_step(generator, method, z_src, batch_streams(0, IDS), 5, 100, optimizer, loop)
    params = list(generator.parameters())
    z = generator(z_src)
    expected = torch.autograd.grad((z * gradient.g.detach()).sum() * gradient_scale(loop, z), params)
    assert gradient.g.shape == z_src.shape and isinstance(gradient.t, tuple) and len(gradient.t) == 2
    assert sum(int(e.abs().sum() > 0) for e in expected) > len(params) // 2
    largest = max(float(vjp.abs().max()) for vjp in expected)
    for param, vjp in zip(params, expected):
        # the grad trick's gradient is scale·(z − (z − g)): g up to one rounding of z − g
        torch.testing.assert_close(param.grad, vjp, rtol=1e-4, atol=1e-5 * largest)


def test_samples_draw_their_own_t_and_eps_from_their_own_streams(tiny_stack):
    method = _method("sds", tiny_stack)
    z, z_src = _latents()
    batch = StepState(7, 100, z, z_src, batch_streams(0, IDS))
    alone = [StepState(7, 100, z[b:b + 1], z_src[b:b + 1], RandomStreams(0, image_id)) for b, image_id in enumerate(IDS)]
    draws = method.draw_timestep(batch)
    assert draws.t == tuple(method.draw_timestep(state).t for state in alone)
    assert draws.t[0] != draws.t[1]
    noise = method.draw_noise(batch)
    for b, state in enumerate(alone):
        assert torch.equal(noise[b:b + 1], method.draw_noise(state))
    assert not torch.equal(noise[0], noise[1])


@pytest.mark.parametrize("name", METHODS)
def test_batched_gradient_equals_each_sample_alone(name, tiny_stack):
    method = _method(name, tiny_stack)
    z, z_src = _latents()
    batch = method.gradient(StepState(7, 100, z, z_src, batch_streams(0, IDS)))
    for b, image_id in enumerate(IDS):
        alone = method.gradient(StepState(7, 100, z[b:b + 1], z_src[b:b + 1], RandomStreams(0, image_id)))
        assert (batch.t[b], batch.t_prev[b]) == (alone.t, alone.t_prev)
        scale = alone.g.abs().max()
        # a batch of 2 through the UNet rounds differently from 1, amplified by CFG (up to 100 for SDS/PDS)
        assert (batch.g[b:b + 1] - alone.g).abs().max() <= 1e-4 * scale
        assert scale > 0
    assert batch.forwards == 2 * alone.forwards


@pytest.mark.parametrize("name", ["sms", "vsd"])
def test_fake_score_takes_one_step_on_the_batch(name):
    from sms.models import ModelSpec, load_stack

    stack = load_stack(ModelSpec())  # trains the fake LoRA: its own stack
    method = _method(name, stack)
    generator = LatentGenerator(TINY, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(generator.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in stack.denoisers.fake_parameters()]
    z_src, _ = _latents()
    record, _ = generator_step(generator, method, z_src, batch_streams(0, IDS), 0, 10, optimizer,
                               LoopConfig(lambda_identity=5e-4 if name == "sms" else 0.0))
    assert len(record.t) == 2 and torch.isfinite(record.distill_grad)
    assert record.aux["forwards"] == 2 and torch.isfinite(record.aux["fake_loss"])
    after = stack.denoisers.fake_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
