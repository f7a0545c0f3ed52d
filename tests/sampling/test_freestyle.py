"""FreeStyle on the tiny models: the modulation maths, the skip routing, modulation off = the plain dual stream bit
for bit, b and s changing the result, UNet rows (hooks = stated = sidecar), bit-identical reruns, the runner."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from sampling_support import astronaut_png, denoiser_rows

from baselines.freestyle import (
    Config,
    FreeStyle,
    Modulation,
    SkipRouter,
    fourier_box,
    freestyle_content,
    scale_backbone,
    structure_scale,
    width_settings,
)
from sms.config import ConfigError, RunConfig, resolve
from sms.models.stack import ModelSpec
from sms.rng import RandomStreams
from sms.runner import load_models, stylize_files
from sms.sampling import Phases, SamplingGrid

STEPS = 5


@pytest.fixture(scope="module")
def models():
    return load_models(ModelSpec(), "freestyle")


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    return astronaut_png(tmp_path_factory.mktemp("freestyle"))


def resolved(**overrides):
    return resolve(RunConfig(method="freestyle", method_overrides={"steps": STEPS, **overrides},
                             loop_overrides={"resolution": 64}))


def latent(models, content, **overrides) -> tuple[torch.Tensor, dict]:
    run = resolved(**overrides)
    method = FreeStyle(run.method_config, models, run)
    with torch.no_grad():
        return method.generate(Image.open(content).convert("RGB"), "astronaut", RandomStreams(0, "astronaut"), None,
                               Phases(torch.device("cpu")), False)


def test_structure_scale_maps_the_channel_mean_onto_1_to_b():
    h = torch.zeros(1, 4, 2, 2)
    h[0, :, 0, 0], h[0, :, 1, 1] = -2.0, 6.0            # channel mean: -2 (min), 0, 0, 6 (max)
    factor = structure_scale(h, b=2.5)
    assert factor.shape == (1, 1, 2, 2)
    assert torch.allclose(factor[0, 0], torch.tensor([[1.0, 1.375], [1.375, 2.5]]))
    assert torch.equal(structure_scale(torch.ones(1, 3, 2, 2), b=2.5), torch.ones(1, 1, 2, 2))  # flat: 1, no NaN
    scaled = scale_backbone(h, n=1, b=2.5)
    assert torch.equal(scaled[:, 1:], h[:, 1:]) and torch.equal(scaled[:, :1], h[:, :1] * factor)


def test_fourier_box_scales_only_the_lowest_frequencies():
    y, x = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    constant, fine = torch.full((1, 1, 8, 8), 3.0), torch.cos(2 * math.pi * 3 * x / 8)[None, None]
    assert torch.allclose(fourier_box(constant + fine, s=0.0), fine, atol=1e-6)       # DC removed, freq 3 kept
    assert torch.allclose(fourier_box(constant + fine, s=0.2), 0.6 + fine, atol=1e-6)
    # the authors' box is centre − 1 … centre: frequency −1 inside, +1 outside, so half a cosine survives s = 0
    coarse = torch.cos(2 * math.pi * y / 8)[None, None]
    assert torch.allclose(fourier_box(coarse, s=0.0), coarse / 2, atol=1e-6)
    noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fourier_box(noise, s=1.0), noise)      # float64 round trip: the float32 input exactly


def test_values_are_keyed_by_width_rank_for_sd15_and_the_tiny_unet():
    assert width_settings(Config(), (320, 640, 1280, 1280)) == {
        1280: (160, 2.5, 1.0), 640: (320, 1.4, 0.2), 320: (0, 1.0, 1.0)}
    assert width_settings(Config(), (32, 64)) == {64: (8, 2.5, 1.0), 32: (16, 1.4, 0.2)}


def test_bad_settings_are_refused(models):
    with pytest.raises(ConfigError, match="one value per backbone width"):
        run = resolved(b=(2.5, 1.4))
        FreeStyle(run.method_config, models, run)


def test_the_content_is_lanczos_resized_and_edge_enhanced():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    expected = image.resize((80, 64), Image.Resampling.LANCZOS).filter(ImageFilter.EDGE_ENHANCE_MORE)
    assert np.array_equal(np.asarray(freestyle_content(image, (80, 64), True)), np.asarray(expected))


def test_skip_routing_hands_pass_ones_skips_to_pass_two(models):
    unet, generator = models.unet, torch.Generator().manual_seed(1)
    a, b = (torch.randn(1, 4, 8, 8, generator=generator) for _ in range(2))
    t, emb = torch.tensor(500), models.embed(["watercolor style"])
    router = SkipRouter(unet)
    with torch.no_grad(), router.installed():
        plain_a, plain_b = (models.denoisers.real(z, t, emb) for z in (a, b))
        with router.stream("record"):
            models.denoisers.real(a, t, emb)
        with router.stream("substitute"):
            a_with_a, b_with_a = (models.denoisers.real(z, t, emb) for z in (a, b))
    assert torch.equal(a_with_a, plain_a)                     # its own skips back: the plain call exactly
    assert (b_with_a - plain_b).abs().max() > 1e-3            # another latent's skips change ε̂
    assert len(router.recorded) == len(unet.up_blocks) and not router.recorded.keys() - {id(m) for m in unet.up_blocks}
    assert [type(block).__name__ for block in Modulation(unet, {}, 1).blocks] == ["CrossAttnUpBlock2D"]


def test_modulation_off_equals_the_plain_dual_stream_and_b_s_change_it(models, content):
    plain, _ = latent(models, content, modulation=False)
    off, _ = latent(models, content, b=(1.0, 1.0, 1.0), s=(1.0, 1.0, 1.0))
    assert torch.equal(off, plain)                            # tolerance 0: bit for bit
    default, record = latent(models, content)
    b_only, _ = latent(models, content, s=(1.0, 1.0, 1.0))
    s_only, _ = latent(models, content, b=(1.0, 1.0, 1.0))
    for changed in (default, b_only, s_only):
        assert (changed - plain).abs().max() > 1e-2
    assert record["freestyle"]["modulation_n_b_s"] == {"64": [8, 2.5, 1.0], "32": [16, 1.4, 0.2]}


def test_the_content_is_noised_at_the_first_of_30_steps(models):
    assert SamplingGrid.from_scheduler(models.scheduler, 30).timesteps[0] == 958   # the authors' hard-coded t


@pytest.mark.parametrize("guidance, per_step", [(5.0, 4), (1.0, 2)])
def test_rows_counted_by_hooks_match_the_stated_count_and_the_sidecar(models, content, tmp_path, guidance, per_step):
    config = RunConfig(method="freestyle", method_overrides={"steps": STEPS, "guidance_scale": guidance},
                       loop_overrides={"resolution": 64})
    with denoiser_rows() as rows:
        report = stylize_files([content], config, tmp_path, progress=False, models=models)
    assert report.written == ["astronaut"], report.failed
    sidecar = json.loads((tmp_path / "astronaut.json").read_text())
    run = resolve(config)
    assert sum(rows) == FreeStyle.expected_unet_forwards(run.method_config, run) == per_step * STEPS
    assert sidecar["unet_forwards"]["total"] == sum(rows) and sidecar["iterations"] == STEPS
    assert sidecar["family"] == "sampling" and sidecar["freestyle"]["start_timestep"] == 801
    assert {"seconds_encoding", "seconds_sampling", "seconds_decoding"} <= set(sidecar["timings"])
    assert Image.open(tmp_path / "astronaut.png").size == (72, 64)


def test_a_rerun_is_bit_identical(models, content):
    first, _ = latent(models, content)
    again, _ = latent(models, content)
    assert torch.equal(first, again)
