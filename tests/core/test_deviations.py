"""The official profile is the release; corrected changes exactly what sms.deviations lists; every row of the
table has a test ``test_row_<id>`` that measures its effect on the tiny models (here for RELEASE_QUIRKS,
test_deviation_method.py and test_deviation_pipeline.py for SUITE_CHANGES)."""
import dataclasses
import math

import test_deviation_method
import test_deviation_pipeline
import torch
from deviation_support import PROMPTS, latents, relative, trained_sms

from sms.config import LoopConfig, RunConfig, resolve
from sms.deviations import RELEASE_QUIRKS, SUITE_CHANGES, release_pixel_settings
from sms.diffusion import posterior_variance
from sms.loop import make_optimizer
from sms.method import StepState
from sms.models import ModelSpec, load_stack
from sms.rng import RandomStreams
from sms.runner import config_digest
from sms.style_matching import SMSConfig, StyleMatchingScore
from sms.timesteps import build_sampler

ROWS = RELEASE_QUIRKS + SUITE_CHANGES


def _field(resolved, dotted):
    if dotted.startswith("loop."):
        return getattr(resolved.loop, dotted[5:])
    value = resolved.method_config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def test_every_row_has_a_unique_id_and_a_measuring_test():
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    measured = {name[len("test_row_"):] for module in (globals(), vars(test_deviation_method),
                                                       vars(test_deviation_pipeline))
                for name in module if name.startswith("test_row_")}
    assert measured == set(ids), f"rows without a measuring test: {set(ids) - measured}; " \
                                 f"tests without a row: {measured - set(ids)}"
    assert all(row.effect for row in ROWS)


def test_official_has_every_release_quirk_and_corrected_fixes_the_marked_ones():
    official = resolve(RunConfig(method="sms", profile="official"))
    corrected = resolve(RunConfig(method="sms", profile="corrected"))
    for quirk in RELEASE_QUIRKS:
        assert _field(official, quirk.setting) == quirk.official, quirk.setting
        expected = quirk.official if quirk.corrected is None else quirk.corrected
        assert _field(corrected, quirk.setting) == expected, quirk.setting
    assert corrected.method_config.exact_posterior is True and corrected.method_config.fake_guidance_scale == 1.0


def test_release_options_are_off_in_every_profile_and_resolve_when_asked():
    settings = release_pixel_settings()
    assert settings == {"loop": {"identity_options": {"sides": "ww"}, "input_resize": "release",
                                 "output_image": "release"},
                        "model": {"release_lora_merge": True}, "method": {}}
    for profile in ("official", "corrected"):
        resolved = resolve(RunConfig(method="sms", profile=profile))
        for name, value in settings["loop"].items():
            assert getattr(resolved.loop, name) != value, name
        for name, value in settings["model"].items():
            assert getattr(resolved.run.model, name) != value, name
    default = resolve(RunConfig(method="sms", profile="official"))
    for section, values in (("loop", settings["loop"]), ("model", settings["model"])):
        for name, value in values.items():  # each option alone is recorded and changes the results' digest
            override = {"loop_overrides": {name: value}} if section == "loop" else {"model": ModelSpec(**{name: value})}
            asked = resolve(RunConfig(method="sms", profile="official", **override))
            assert asked.as_dict()[section][name] == value
            assert config_digest(asked) != config_digest(default), name


def test_row_exact_posterior(tiny_stack):
    method = StyleMatchingScore(SMSConfig(), tiny_stack, PROMPTS)
    streams = RandomStreams(0, "exact")
    ratios = [posterior_variance(method.schedule, t, t - 2, exact=True) / posterior_variance(method.schedule, t, t - 2)
              for t in (21, 201, 499)]
    assert all(1.99 < ratio < 2.0 for ratio in ratios), ratios
    z, z_src = latents()
    release = method.gradient(StepState(5, 500, z, z_src, streams))
    method.config = dataclasses.replace(method.config, exact_posterior=True)
    exact = method.gradient(StepState(5, 500, z, z_src, streams))
    ratio = posterior_variance(method.schedule, exact.t, exact.t_prev, exact=True) / release.diagnostics["w_t"]
    assert exact.t == release.t and torch.allclose(exact.g, ratio * release.g, rtol=1e-5, atol=1e-12)


def test_row_fake_guidance_scale():
    method, streams = trained_sms(load_stack(ModelSpec()))
    z, z_src = latents()
    guided = method.gradient(StepState(5, 500, z, z_src, streams))
    method.config = dataclasses.replace(method.config, fake_guidance_scale=1.0)
    unguided = method.gradient(StepState(5, 500, z, z_src, streams))
    assert 1.5 < relative([unguided.g], [guided.g]) < 2.5  # measured 1.90
    assert (guided.forwards, unguided.forwards) == (6, 5)


def test_row_weight_decay():
    def shrink(weight_decay: float) -> float:
        z = torch.ones(1, 4, 8, 8, requires_grad=True)
        optimizer, scheduler = make_optimizer(z, LoopConfig(weight_decay=weight_decay))
        for _ in range(500):
            z.grad = torch.zeros_like(z)  # g = 0: only the decay moves z
            optimizer.step()
            scheduler.step()
        return float(z.detach().mean())

    loop = LoopConfig()
    warmup_cosine = [loop.lr * (i / loop.warmup if i < loop.warmup else
                                0.5 * (1 + math.cos(math.pi * (i - loop.warmup) / (1.5 * loop.iters - loop.warmup))))
                     for i in range(loop.iters)]
    expected = math.prod(1 - loop.weight_decay * lr for lr in warmup_cosine)
    assert abs(shrink(0.01) - expected) < 1e-5 and abs(expected - 0.707) < 1e-3
    assert shrink(0.0) == 1.0


def test_row_fake_t_range(tiny_stack):
    method = StyleMatchingScore(resolve(RunConfig(method="sms", profile="official")).method_config, tiny_stack, PROMPTS)
    z, z_src = latents()
    streams = RandomStreams(0, "fake_t")

    def fake_ts(sampler) -> list[int]:
        return [method.draw_timestep(StepState(step, 500, z, z_src, streams), "fake_t", sampler).t for step in range(500)]

    release, own = fake_ts(method.fake_sampler), fake_ts(build_sampler(method.config.fake.t_sampler))
    assert min(release) >= 21 and max(release) == 499
    assert max(own) > 900
