"""Numeric pins from sms-spec.md §3, §4, §6: the grid, ANS bounds, w_t, the PSR mask."""
import math

import pytest
import torch

from sms.diffusion import NoiseSchedule, ddim_grid, posterior_mean_coefficients, posterior_variance
from sms.models.tiny import build_tiny_scheduler
from sms.spectrum import dct2, fixed_threshold, idct2, low_pass_mask, progressive_threshold
from sms.timesteps import AdaptiveNarrowing, LinearAnnealing, UniformGrid, t_upper


@pytest.fixture(scope="module")
def scheduler():
    return build_tiny_scheduler()


@pytest.fixture(scope="module")
def grid(scheduler):
    return ddim_grid(scheduler, 500)


def test_grid_is_ascending_odd_timesteps(grid):
    assert grid.tolist() == list(range(1, 1000, 2))


@pytest.mark.parametrize("step, expected", [(0, 499), (100, 399), (250, 249), (400, 97), (478, 21), (499, 21)])
def test_ans_upper_bound(grid, step, expected):
    assert t_upper(grid, step, 500) == expected


def test_ans_draws_stay_inside_the_narrowing_window(grid):
    sampler = AdaptiveNarrowing()
    generator = torch.Generator().manual_seed(0)
    for step in range(0, 500, 7):
        draw = sampler.sample(grid, step, 500, generator)
        assert 21 <= draw.t <= t_upper(grid, step, 500)
        assert draw.t_prev == draw.t - 2


def test_uniform_and_linear_samplers(grid):
    generator = torch.Generator().manual_seed(1)
    ts = [UniformGrid().sample(grid, 0, 500, generator).t for _ in range(2000)]
    assert min(ts) == 21 and max(ts) == 979
    linear = [LinearAnnealing().sample(grid, i, 500, generator).t for i in range(500)]
    assert linear[0] == 499 and linear[-1] == 21
    assert all(a >= b for a, b in zip(linear, linear[1:]))


@pytest.mark.parametrize("t, expected", [(21, 8.61e-4), (201, 2.029e-3), (499, 4.786e-3)])
def test_w_t_single_step(scheduler, t, expected):
    schedule = NoiseSchedule.from_scheduler(scheduler)
    assert posterior_variance(schedule, t, t - 2) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("t", [21, 201, 499])
def test_w_t_exact_is_about_twice_the_release(scheduler, t):
    schedule = NoiseSchedule.from_scheduler(scheduler)
    ratio = posterior_variance(schedule, t, t - 2, exact=True) / posterior_variance(schedule, t, t - 2)
    assert 1.98 < ratio < 2.0
    exact_beta = 1 - schedule.alpha_bar(t) / schedule.alpha_bar(t - 2)
    single_step = (1 - schedule.alpha_bar(t - 2)) / (1 - schedule.alpha_bar(t)) * exact_beta
    assert posterior_variance(schedule, t, t - 2, exact=True) == pytest.approx(single_step, rel=1e-12)


def test_posterior_mean_reduces_to_ddpm_for_adjacent_steps(scheduler):
    schedule = NoiseSchedule.from_scheduler(scheduler)
    c0, c1 = posterior_mean_coefficients(schedule, 500, 499, exact=True)
    c0_step, c1_step = posterior_mean_coefficients(schedule, 500, 499, exact=False)
    # ᾱ is stored in float32 by diffusers, so 1 − ᾱ_t/ᾱ_{t−1} matches β_t to ~1e-5 relative
    assert c0 == pytest.approx(c0_step, rel=1e-4) and c1 == pytest.approx(c1_step, rel=1e-6)


@pytest.mark.parametrize("t, k, kept", [(21, 5, 21), (101, 25, 351), (251, 63, 2080), (499, 125, 4095)])
def test_progressive_mask_on_64x64(t, k, kept):
    assert progressive_threshold(t, 64, 64) == k
    assert int(low_pass_mask(64, 64, k).sum()) == kept


def test_mask_uses_true_height_and_width():
    assert progressive_threshold(499, 64, 96) == math.floor(499 / 500 * 158)
    mask = low_pass_mask(64, 96, progressive_threshold(499, 64, 96))
    assert mask.shape == (64, 96) and mask[0, 95] == 1 and mask[63, 95] == 0
    assert fixed_threshold(64, 64) == 37


def test_dct_is_orthonormal():
    x = torch.randn(2, 4, 64, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    coefficients = dct2(x)
    assert torch.allclose(idct2(coefficients), x, atol=1e-10)
    assert torch.allclose(coefficients.square().sum(), x.square().sum(), rtol=1e-12)  # Parseval
    x32 = x.float()
    assert (idct2(dct2(x32)) - x32).abs().max() < 1e-5


def test_dct_matches_scipy():
    import scipy.fft

    x = torch.randn(8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = scipy.fft.dctn(x.numpy(), type=2, norm="ortho")
    assert torch.allclose(dct2(x), torch.from_numpy(expected), atol=1e-12)
