"""StyleID (baselines/styleid.py) and its attention processors (sms/attention_injection.py) on the tiny models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image
from sampling_support import denoiser_rows
from skimage import data

import baselines.styleid as styleid_module
from baselines.styleid import StyleID, adain, grids
from sms.attention_injection import InjectionState, installed, self_attention_layers
from sms.config import ConfigError, RunConfig, resolve
from sms.images import centre_crop
from sms.models import ModelSpec
from sms.models.configs import sd15_scheduler_config
from sms.rng import RandomStreams
from sms.runner import InputError, stylize_files
from sms.sampling import Phases, SamplingGrid, invert, sample

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def content() -> Image.Image:
    return Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def exemplar() -> Image.Image:
    return Image.fromarray(data.coffee())    # 600×400: exercises the centre crop


def make(stack, **overrides) -> StyleID:
    run = resolve(RunConfig(method="styleid", loop_overrides={"resolution": 64}, method_overrides=overrides))
    return StyleID(run.method_config, stack, run)


def latent(method: StyleID, image, exemplar) -> torch.Tensor:
    with torch.no_grad():
        return method.generate(image, "img", RandomStreams(0, "img"), exemplar, Phases(CPU), False)[0]


@pytest.mark.parametrize("profile, total, steps", [("official", 150, 50), ("official_t999", 151, 49)])
def test_unet_rows_counted_by_hooks_equal_the_expected_count(tiny_stack, content, exemplar, profile, total, steps):
    run = resolve(RunConfig(method="styleid", profile=profile, loop_overrides={"resolution": 64}))
    method = StyleID(run.method_config, tiny_stack, run)
    before = dict(tiny_stack.unet.attn_processors)
    with denoiser_rows() as rows:
        result = method.stylize(content, "img", RandomStreams(0, "img"), exemplar=exemplar, progress=False)
    assert sum(rows) == StyleID.expected_unet_forwards(run.method_config, run) == result.unet_forwards == total
    assert rows.count(2) == (total - steps) // 2 and rows.count(1) == steps   # inversion: content + exemplar rows
    assert result.steps == steps and result.record["styleid"]["sampling_steps"] == steps
    assert result.record["styleid"]["inversion_steps"] == (total - steps) // 2
    assert set(result.phases) == {"encoding", "inversion", "sampling", "decoding"}
    # the processors are handed back: every layer keeps the processor it had
    assert {k: type(v) for k, v in tiny_stack.unet.attn_processors.items()} == {k: type(v) for k, v in before.items()}


def test_t999_grids_reproduce_the_authors_start_step():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(sd15_scheduler_config())
    plain_inv, plain_sample = grids(scheduler, 50, False)
    assert plain_inv is plain_sample and plain_inv.timesteps[:2] == (981, 961) and plain_inv.timesteps[-1] == 1
    inversion, sampling = grids(scheduler, 50, True)
    assert inversion.timesteps[:3] == (999, 981, 961) and len(inversion) == 51
    assert sampling.timesteps[0] == 961 and len(sampling) == 49 and sampling.timesteps[-1] == 1
    assert inversion.alpha_bars[0] == pytest.approx(float(scheduler.alphas_cumprod[999]))


# The tiny random UNet's ε̂ moves ≈ 3× as much as z at every t (measured: ‖Δε̂‖/‖Δz‖ ≈ 2.6–3.2), unlike a trained
# UNet's, so its DDIM inversion ODE is unstable at high noise (errors grow ∝ exp(3·σ/√ᾱ)): over the full grid a
# round trip misses z_c by 4.6 (latent std 0.21). These two tests therefore run the grid's low-noise end
# (200-step grid, strength 0.2: 40 steps, t ≤ 196), where the round trip converges at first order.
def low_noise_grid(scheduler, num_steps: int = 200) -> SamplingGrid:
    return SamplingGrid.from_scheduler(scheduler, num_steps, strength=0.2)


def round_trip(stack, z0: torch.Tensor, grid: SamplingGrid) -> torch.Tensor:
    empty = stack.embed([""])
    eps = lambda z, t, i: stack.denoisers.real(z, torch.tensor(t), empty)
    with torch.no_grad():
        return sample(eps, invert(eps, z0, grid)[0], grid)


def test_inversion_then_sampling_without_injection_reconstructs_the_content(tiny_stack, content):
    z_c = make(tiny_stack).encode(content, RandomStreams(0, "img"))
    fine = (round_trip(tiny_stack, z_c, low_noise_grid(tiny_stack.scheduler, 200)) - z_c).abs().max().item()
    coarse = (round_trip(tiny_stack, z_c, low_noise_grid(tiny_stack.scheduler, 50)) - z_c).abs().max().item()
    # measured 0.0199 (40 steps) and 0.0737 (10 steps): DDIM inversion is first order, 4× the steps ≈ ¼ the error
    assert fine < 0.03 and coarse / fine > 3.0


def test_gamma_one_temperature_one_and_content_as_exemplar_reduce_to_reconstruction(tiny_stack, content, exemplar,
                                                                                    monkeypatch):
    grid = low_noise_grid(tiny_stack.scheduler)
    monkeypatch.setattr(styleid_module, "grids", lambda scheduler, num_steps, t999: (grid, grid))
    z_c = make(tiny_stack).encode(content, RandomStreams(0, "img"))
    plain = round_trip(tiny_stack, z_c, grid)
    reduced = latent(make(tiny_stack, gamma=1.0, temperature=1.0), content, content)
    styled = latent(make(tiny_stack), content, exemplar)
    # measured 0.0013: the injected layers see the inversion's features of step i (one level lower) instead of the
    # sampler's, an O(step) difference 15× below the round trip's own error; real injection moves it ≈ 0.08
    assert (reduced - plain).abs().max().item() < 0.003
    assert (styled - plain).abs().max().item() > 0.03


def test_injected_layers_attend_with_the_exemplars_cached_keys_and_values(tiny_stack, content, exemplar):
    method, n = make(tiny_stack, steps=4), 4
    modules = dict(tiny_stack.unet.named_modules())
    layers = self_attention_layers(tiny_stack.unet)
    seen = {layer: {"q": [], "k": [], "v": [], "out_in": []} for layer in layers}
    hooks = []
    for layer in layers:
        attn, record = modules[layer], seen[layer]
        hooks += [getattr(attn, f"to_{kind}").register_forward_hook(
            lambda m, a, out, record=record, kind=kind: record[kind].append(out.detach().clone())) for kind in "qkv"]
        hooks.append(attn.to_out[0].register_forward_pre_hook(
            lambda m, a, record=record: record["out_in"].append(a[0].detach().clone())))
    try:
        latent(method, content, exemplar)
    finally:
        for hook in hooks:
            hook.remove()
    gamma, temperature = method.config.gamma, method.config.temperature

    def attention(q, k, v, heads):
        split = lambda x: x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        weights = torch.softmax(temperature * q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return (weights @ v).transpose(1, 2).reshape(q.shape[0], -1, heads * q.shape[-1])

    for layer, record in seen.items():
        heads = modules[layer].heads
        # K, V are projected only during inversion (2 rows: content, exemplar); sampling reuses the cache
        assert len(record["k"]) == len(record["v"]) == n and all(k.shape[0] == 2 for k in record["k"])
        assert len(record["q"]) == len(record["out_in"]) == 2 * n
        for i in range(n):                     # grid index i: inversion call n−1−i, sampling call i
            inv = record["q"][n - 1 - i], record["k"][n - 1 - i], record["v"][n - 1 - i]
            q_c, k_c, v_c = (x[:1] for x in inv)
            k_s, v_s = inv[1][1:], inv[2][1:]
            query = gamma * q_c + (1 - gamma) * record["q"][n + i]
            used = record["out_in"][n + i]
            torch.testing.assert_close(used, attention(query, k_s, v_s, heads), atol=1e-5, rtol=1e-4)
            assert (used - attention(query, k_c, v_c, heads)).abs().max() > 1e-2   # not the content's K, V


def test_rerun_is_bit_identical_and_another_exemplar_changes_the_result(tiny_stack, content, exemplar):
    method = make(tiny_stack, steps=20)

    def run(style):
        return np.asarray(method.stylize(content, "img", RandomStreams(0, "img"), exemplar=style, progress=False).image)

    first, again = run(exemplar), run(exemplar)
    other = run(Image.fromarray(data.chelsea()))
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int)).mean() > 2.0   # measured 12.6


def test_stylize_files_writes_png_and_sampling_sidecar(tmp_path, content, exemplar):
    photo, style = tmp_path / "photo.png", tmp_path / "style.png"
    content.resize((96, 64)).save(photo)
    exemplar.save(style)
    config = RunConfig(method="styleid", model=ModelSpec(), exemplar=str(style), method_overrides={"steps": 10},
                       loop_overrides={"resolution": 64})
    stylize_files([photo], config, tmp_path / "out", progress=False)
    sidecar = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert Image.open(tmp_path / "out" / "photo.png").size == (96, 64)
    assert sidecar["family"] == "sampling" and sidecar["iterations"] == 10
    assert sidecar["timings"]["seconds_inversion"] > 0 and sidecar["timings"]["seconds_sampling"] > 0
    assert sidecar["unet_forwards"]["total"] == 30
    assert sidecar["styleid"]["injected_layers"] == [f"up_blocks.1.attentions.{j}.transformer_blocks.0.attn1"
                                                     for j in (0, 1)]
    assert (sidecar["styleid"]["gamma"], sidecar["styleid"]["temperature"]) == (0.75, 1.5)
    assert Path(sidecar["exemplar"]["path"]) == style.resolve()


def test_missing_exemplar_is_refused(tmp_path, tiny_stack, content):
    content.save(tmp_path / "photo.png")
    with pytest.raises(InputError, match="takes an exemplar style image and this run has none"):
        stylize_files([tmp_path / "photo.png"], RunConfig(method="styleid"), tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="exemplar image and was given none"):
        make(tiny_stack).stylize(content, "img", RandomStreams(0, "img"), exemplar=None, progress=False)


def test_default_layers_are_sd15s_output_blocks_6_to_11():
    unet = UNet2DConditionModel(block_out_channels=(32, 32, 32, 32), layers_per_block=2, cross_attention_dim=32,
                                norm_num_groups=32, attention_head_dim=8, sample_size=8)   # SD-1.5's block layout
    expected = [f"up_blocks.{b}.attentions.{j}.transformer_blocks.0.attn1" for b in (2, 3) for j in range(3)]
    assert self_attention_layers(unet) == expected
    assert self_attention_layers(unet, (1,))[0] == "up_blocks.1.attentions.0.transformer_blocks.0.attn1"
    with pytest.raises(ValueError, match=r"this UNet's are \[1, 2, 3\]"):
        self_attention_layers(unet, (0,))


def test_adain_crop_and_settings():
    generator = torch.Generator().manual_seed(0)
    c, s = torch.randn(1, 4, 8, 8, generator=generator), 3 * torch.randn(1, 4, 8, 8, generator=generator) + 1
    out = adain(c, s)
    torch.testing.assert_close(out.mean((0, 2, 3)), s.mean((0, 2, 3)))
    torch.testing.assert_close(out.std((0, 2, 3)), s.std((0, 2, 3)))
    assert centre_crop(Image.new("RGB", (600, 400)), 1.0).size == (400, 400)
    assert centre_crop(Image.new("RGB", (400, 600)), 1.5).size == (400, 267)
    with pytest.raises(ConfigError, match="gamma=1.5"):
        resolve(RunConfig(method="styleid", method_overrides={"gamma": 1.5}))
    with pytest.raises(ConfigError, match="temperature=0"):
        resolve(RunConfig(method="styleid", method_overrides={"temperature": 0}))


def test_capture_mode_leaves_the_unet_output_unchanged(tiny_stack):
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    empty = tiny_stack.embed(["", ""])
    with torch.no_grad():
        plain = tiny_stack.denoisers.real(z, torch.tensor(501), empty)
        state = InjectionState()
        with installed(tiny_stack.unet, self_attention_layers(tiny_stack.unet), state), state.capturing(501):
            captured = tiny_stack.denoisers.real(z, torch.tensor(501), empty)
    assert torch.equal(plain, captured)
    assert sorted({kind for (_, _, kind) in state.bank.tensors}) == ["k", "q", "v"]
    assert all(t.shape[0] == 1 for t in state.bank.tensors.values())
