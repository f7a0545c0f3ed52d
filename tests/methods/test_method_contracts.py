"""Per-method contracts: DDS/PDS vanish at the source, SDS is w(t)(ε̂ − ε), VSD is SMS with R ≡ 1 and λ = 0,
the style prior swaps the target's UNet, and all methods share t and ε for the same seed."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from sms.config import RunConfig, resolve
from sms.method import StepState, methods
from sms.rng import RandomStreams

STEP, NUM_STEPS = 2, 5


def build(name, stack, prompts, profile=None, **overrides):
    run = resolve(RunConfig(method=name, profile=profile, prompts=prompts, method_overrides=overrides))
    return run.method_cls(run.method_config, stack, prompts)


def state_for(z, z_src, seed=0):
    return StepState(STEP, NUM_STEPS, z, z_src, RandomStreams(seed, "contract"))


@pytest.fixture(scope="module")
def latents():
    generator = torch.Generator().manual_seed(7)
    return torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)


@pytest.mark.parametrize("name,options", [("dds", {}), ("pds", {"exact_posterior": False}),
                                          ("pds", {"exact_posterior": True})])
def test_delta_methods_vanish_at_the_source_with_equal_prompts(name, options, tiny_stack, prompts, latents):
    method = build(name, tiny_stack, prompts, prior="base", **options)
    method.cond.source = method.cond.target    # y_tgt == y_src (Prompts' target is "{style}, {caption}")
    z = latents[0]
    gradient = method.gradient(state_for(z, z.clone()))
    assert gradient.forwards == 4              # tgt + src, cond + uncond: one batched call
    assert torch.count_nonzero(gradient.g) == 0
    moved = method.gradient(state_for(z, latents[1]))
    assert moved.g.abs().max() > 0 and torch.isfinite(moved.g).all()


def hand_sds(stack, prompts, network_name, z, streams, t, scale, weighting):
    """w(t)(ε̂ − ε) without sms.diffusion: ᾱ from the scheduler, CFG-D written out."""
    from sms.method import Conditioning

    cond = Conditioning(stack, prompts)
    eps = streams.normal(STEP, "eps", z.shape)
    alpha_bar = float(stack.scheduler.alphas_cumprod[t])
    z_t = alpha_bar ** 0.5 * z + (1 - alpha_bar) ** 0.5 * eps
    network = getattr(stack.denoisers, network_name)
    with torch.no_grad():
        eps_c, eps_u = network(torch.cat([z_t, z_t]), torch.tensor(t), torch.cat([cond.target, cond.uncond])).chunk(2)
    eps_hat = eps_u + scale * (eps_c - eps_u)
    weight = {"sds": 1 - alpha_bar, "uniform": 1.0, "fantasia3d": alpha_bar ** 0.5 * (1 - alpha_bar)}[weighting]
    return weight * (eps_hat - eps)


@pytest.mark.parametrize("weighting", ["sds", "uniform", "fantasia3d"])
@pytest.mark.parametrize("prior,network", [("base", "real"), ("style", "style")])
def test_sds_is_weighted_noise_residual(weighting, prior, network, tiny_stack, prompts, latents):
    method = build("sds", tiny_stack, prompts, weighting=weighting, prior=prior, guidance_scale=7.5)
    z = latents[0]
    gradient = method.gradient(state_for(z, latents[1], seed=3))
    expected = hand_sds(tiny_stack, prompts, network, z, RandomStreams(3, "contract"), gradient.t, 7.5, weighting)
    assert gradient.forwards == 2
    torch.testing.assert_close(gradient.g, expected, rtol=1e-5, atol=1e-7)


def test_sds_weightings_are_pure_functions():
    from baselines.sds import WEIGHTINGS

    assert WEIGHTINGS["sds"](0.25) == 0.75
    assert WEIGHTINGS["uniform"](0.25) == 1.0
    assert WEIGHTINGS["fantasia3d"](0.25) == 0.5 * 0.75


@pytest.mark.parametrize("name", ["sds", "dds", "pds"])
def test_style_prior_scores_the_target_with_the_style_unet(name, tiny_stack, prompts, latents):
    base = build(name, tiny_stack, prompts, prior="base").gradient(state_for(*latents))
    style = build(name, tiny_stack, prompts, prior="style").gradient(state_for(*latents))
    assert base.forwards == style.forwards
    assert (base.t, base.t_prev) == (style.t, style.t_prev)
    assert not torch.equal(base.g, style.g)
    with pytest.raises(ValueError, match="prior"):
        resolve(RunConfig(method=name, method_overrides={"prior": "lora"}))


def test_vsd_step_equals_sms_without_relevance(tiny_stack, prompts, latents):
    vsd = build("vsd", tiny_stack, prompts, "official")
    sms = build("sms", tiny_stack, prompts, relevance=False, t_sampler="uniform")
    g_vsd, g_sms = vsd.gradient(state_for(*latents)), sms.gradient(state_for(*latents))
    assert (g_vsd.t, g_vsd.forwards) == (g_sms.t, g_sms.forwards) == (g_vsd.t, 4)
    assert torch.equal(g_vsd.g, g_sms.g)
    assert not torch.equal(build("sms", tiny_stack, prompts, t_sampler="uniform").gradient(state_for(*latents)).g,
                           g_vsd.g)


def test_vsd_run_equals_sms_with_r_one_and_lambda_zero(run_method):
    vsd = run_method("vsd", "official", iters=2)
    release_vsd_fake = {"t_sampler": "uniform", "t_sampler_options": {"min_ratio": 0.02, "max_ratio": 0.98}}
    sms = run_method("sms", "official", iters=2, loop_overrides={"identity": "none", "lambda_identity": 0.0},
                     method_overrides={"relevance": False, "t_sampler": "uniform", "fake": release_vsd_fake})
    assert vsd.result.image.tobytes() == sms.result.image.tobytes()
    assert dataclasses.asdict(vsd.result.trace) == dataclasses.asdict(sms.result.trace)


def test_vsd_official_trains_its_fake_score_over_the_releases_range(tiny_stack, prompts, latents):
    """The release narrows the fake update to t ∈ [21, 499] only for method="sms"; vsd keeps [21, 979]."""
    def fake_timesteps(name):
        method = build(name, tiny_stack, prompts, "official")
        return [method.draw_timestep(state_for(*latents, seed=seed), "fake_t", method.fake_sampler).t
                for seed in range(300)]

    vsd, sms = fake_timesteps("vsd"), fake_timesteps("sms")
    assert min(vsd) >= 21 and max(vsd) <= 979 and sum(t > 499 for t in vsd) > 100   # about half above 499
    assert min(sms) >= 21 and max(sms) <= 499


def test_common_random_numbers_across_methods(run_method):
    logs = {}
    for name in ("sms", "dds", "pds"):
        streams = RandomStreams(0, "conformance", record=True)
        run_method(name, "harmonised" if name != "sms" else None, iters=2, streams=streams)
        logs[name] = [entry for entry in streams.log if entry[1] in ("t", "eps")]
    assert len(logs["sms"]) == 4
    assert logs["sms"] == logs["dds"] == logs["pds"]


def test_every_method_has_official_and_harmonised_profiles():
    for name in ("sds", "dds", "pds", "vsd"):
        cls = methods.get(name)
        assert {"official", "harmonised"} <= set(cls.profiles) and cls.default_profile == "harmonised"
    dds = resolve(RunConfig(method="dds", profile="official"))
    assert (dds.loop.optimizer, dds.loop.grad_numerator, dds.loop.iters, dds.loop.init) == ("sgd", 2000.0, 200, "mean")
    assert dds.method_config.t_sampler == "range" and dds.method_config.t_sampler_options == {"low": 50, "high": 949}
    sds = resolve(RunConfig(method="sds", profile="official"))
    assert (sds.method_config.guidance_scale, sds.loop.iters, sds.loop.weight_decay) == (101.0, 1000, 0.0)
    pds = resolve(RunConfig(method="pds", profile="official"))
    assert (pds.method_config.guidance_scale, pds.loop.iters, pds.method_config.t_sampler) == (100.0, 500, "uniform")
    harmonised = resolve(RunConfig(method="pds"))
    assert harmonised.method_config.t_sampler == "ans" and harmonised.loop.identity == "none"
    assert harmonised.loop.iters == 500 and harmonised.loop.optimizer == "adamw"
