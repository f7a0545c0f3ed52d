"""Closed-form check of the SMS objective on Gaussian latents (no pretrained weights).

Setting. Latents are fields of shape (C, h, w) = (2, 8, 8). Source and style are Gaussian laws that are
diagonal in the orthonormal DCT basis (tests/method/analytic.py), so their ε-predictions are exact at every
t: ε*(z_t) = √(1−ᾱ)(Z_t − √ᾱ m)/(ᾱ s² + 1 − ᾱ) per DCT coordinate (derived in analytic.py's docstring and
checked by Monte Carlo below). The style differs from the source at LOW frequencies (u + v ≤ 2: shifted
mean, more power) and at HIGH frequencies (u + v ≥ 8: shifted mean, ×2.5 power in channel 0, ×0.5 in
channel 1); mid frequencies are equal.

What runs is the suite's real code: ``StyleMatchingScore.gradient`` (ANS timestep draws, ε draws from
RandomStreams, add_noise, CFG, w_t = posterior_variance, nan_to_num, optional SAGR), then the loop's own
``distillation_loss``, ``gradient_scale``, ``make_optimizer`` (AdamW + warm-up/cosine from LoopConfig) and
the registered ``psr`` identity loss, in the order of ``sms.loop.stylize_image``. Only the networks are
replaced: ε_style / ε_real are the exact style / source predictions and ε_fake is the exact prediction of
the Gaussian fitted to the current particles, refitted by ``update`` after every step of z (the fake LoRA of
spec §8 in its ideal limit, so no training is needed). A batch of B particles is one z tensor of shape
(B, C, h, w); each particle is an independent "image".

Asserted factors [in brackets: measured for SEED = 0; then the range over seeds 0–3 (0–5 for the sign)]:
  (1) style matching alone, 200 iterations: KL(particle fit ‖ style) falls ≥ 1000× [79.4 → 0.0043 nats,
      18,500×; 16,800–20,900×]; the RMS standardised error of the per-coordinate means and standard
      deviations falls ≥ 50× [137×; 132–148×], and ≥ 10× in each of the low and high bands [35×, 345×].
      Sign: over the first 20 iterations the KL falls at every iteration and ends ≥ 4× lower [6.4×;
      5.4–10.3×]; with g negated it rises at every iteration and ends ≥ 3× higher [4.5×; 4.45–5.1×].
  (2) + PSR (λ = 5e-3): the per-particle low-frequency coefficients (u + v ≤ 2) move ≥ 5× less than
      without PSR [mean |Δ| 0.700 → 0.081, 8.6×; 8.6–12×] and their KL to the style stays > 50 % of the
      source's [81 %; 81–86 %] (without PSR it falls ≥ 100× [1,300×]), while the high-frequency (u + v ≥ 8)
      KL to the style still falls ≥ 100× [74.5 → 0.023, 3,200×; 2,950–3,340×].
      λ is 10× the release's 5e-4 because the Gaussian score differences here are smaller than a real
      CFG-4.5 style score's: PSR's L1 gradient is λ·sign/numel per masked coefficient against g/numel, so
      what matters is λ relative to w_t·|ε_style − ε_fake| ≈ 1e-3 here.
  (3) scale/wiring: g = w_t (ε_style − ε_fake) with w_t = (1−ᾱ_{t−2})/(1−ᾱ_t)·β_t (or the exact two-step
      β) recomputed here from the scheduler's tables, to float32 rounding, with and without SAGR; the
      loop's loss has ∂L/∂z = g/numel(z).
"""
from __future__ import annotations

import math

import pytest
import torch
from analytic import AnalyticDenoisers, AnalyticStack, DiagonalGaussian, dct_matrix, frequency_index, from_dct, to_dct

from sms.config import LoopConfig
from sms.diffusion import NoiseSchedule, cfg
from sms.identity import build_identity_loss
from sms.loop import distillation_loss, gradient_scale, make_optimizer
from sms.method import Prompts, StepState
from sms.models.tiny import build_tiny_scheduler
from sms.rng import RandomStreams
from sms.spectrum import dct2, progressive_threshold
from sms.style_matching import SMSConfig, StyleMatchingScore
from sms.timesteps import t_upper

SEED = 0
IMAGE_ID = "gaussian-closed-form"
B, C, H, W = 128, 2, 8, 8          # numel = 16,384 = one 4×64×64 SD latent, so g/numel has the real magnitude
ITERS = 200
LAMBDA_PSR = 5e-3
FREQ = frequency_index(H, W)
LOW = FREQ <= 2                    # inside PSR's mask whenever k = ⌊t/500·14⌋ ≥ 2, i.e. t ≥ 72
HIGH = FREQ >= 8                   # inside the mask only for t ≥ 286 (early ANS iterations)


def laws() -> tuple[DiagonalGaussian, DiagonalGaussian]:
    f = FREQ.float()
    s_src = (1.0 / (1.0 + 0.35 * f)).expand(C, H, W).clone()       # power falls with frequency
    m_src = torch.zeros(C, H, W)
    m_src[:, 0, 0] = torch.tensor([0.5, -0.5])
    m_sty, s_sty = m_src.clone(), s_src.clone()
    for c, (shift, power) in enumerate([(1.0, 2.5), (-1.0, 0.5)]):
        m_sty[c][LOW] += shift * s_src[c][LOW]
        s_sty[c][LOW] *= 1.6
        m_sty[c][HIGH] += 0.8 * shift * s_src[c][HIGH]
        s_sty[c][HIGH] *= power
    return DiagonalGaussian(m_src, s_src), DiagonalGaussian(m_sty, s_sty)


SOURCE, STYLE = laws()
SCHEDULER = build_tiny_scheduler()                   # SD-1.5's DDIM config: scaled-linear β 0.00085 → 0.012
SCHEDULE = NoiseSchedule.from_scheduler(SCHEDULER)


def source_particles() -> torch.Tensor:
    return SOURCE.sample(B, torch.Generator().manual_seed(SEED))


def build_method(relevance: bool = False, **options) -> tuple[StyleMatchingScore, AnalyticDenoisers]:
    denoisers = AnalyticDenoisers(SCHEDULE, SOURCE, STYLE)
    method = StyleMatchingScore(SMSConfig(relevance=relevance, **options), AnalyticStack(denoisers, SCHEDULER),
                                Prompts(style="x"))

    def update(state: StepState) -> dict[str, float]:
        denoisers.observe(state.z)                   # the ideal fake: refit to the moved particles
        return {"fake_loss": 0.0, "forwards": 0}

    method.update = update
    return method, denoisers


def loop_config(lambda_identity: float = 0.0) -> LoopConfig:
    """The release's optimiser (AdamW lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, linear
    warm-up then half-cosine over 1.5·N), compressed to N = 200 iterations with warm-up N/5 (100/500).

    The grad trick's ½·mean reduction makes ∂L/∂z = g/numel(z): with B particles in one tensor every
    particle's step is scaled by 1/(B·C·h·w), not 1/(C·h·w). AdamW divides each element's update by its
    own gradient RMS, so it is invariant to that constant (up to its eps = 1e-8, which here, as in the real
    loop with one 4×64×64 latent of the same numel, is of the order of the per-element gradients ~1e-8–1e-7
    and only damps the smallest steps). That is why the real loop can use the mean and still move."""
    return LoopConfig(iters=ITERS, lr=0.1, warmup=ITERS // 5, schedule="warmup_cosine", cosine_horizon=1.5,
                      identity="psr", lambda_identity=lambda_identity)


def run(lambda_identity: float = 0.0, sign: float = 1.0, stop: int | None = None,
        history: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """stylize_image's loop body, with the analytic stack; returns (z_src, z after ``stop`` iterations) and
    appends KL(particle fit ‖ style) after every iteration to ``history`` if given."""
    method, denoisers = build_method()
    loop = loop_config(lambda_identity)
    identity = build_identity_loss(loop.identity, **loop.identity_options)
    streams = RandomStreams(SEED, IMAGE_ID)
    z_src = source_particles()
    method.begin(streams)
    z = z_src.clone().requires_grad_(True)
    optimizer, scheduler = make_optimizer(z, loop)
    scale = gradient_scale(loop, z)
    denoisers.observe(z_src)                         # fake starts as the source fit (cf. peft B = 0: ε_fake = ε_real)
    for step in range(loop.iters if stop is None else stop):
        gradient = method.gradient(StepState(step, loop.iters, z.detach(), z_src, streams))
        loss = distillation_loss(z, sign * gradient.g, scale)
        if loop.lambda_identity:
            loss = loss + loop.lambda_identity * identity(z, z_src, gradient.t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        method.update(StepState(step, loop.iters, z.detach(), z_src, streams))
        if history is not None:
            history.append(fit(z).kl_to(STYLE))
    return z_src, z.detach()


def fit(z: torch.Tensor) -> DiagonalGaussian:
    return DiagonalGaussian.fit(z)


def standardised_moment_error(z: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """RMS over coordinates of ((m̂ − m)/s, (ŝ − s)/s) against the style law."""
    law = fit(z)
    errors = torch.stack([(law.mean - STYLE.mean) / STYLE.std, (law.std - STYLE.std) / STYLE.std])
    if where is not None:
        errors = errors[..., where]
    return float(errors.square().mean().sqrt())


def low_frequency_displacement(z: torch.Tensor, z_src: torch.Tensor) -> float:
    """Mean over particles, channels and u + v ≤ 2 of |DCT(z) − DCT(z_src)| (per-particle, not a statistic)."""
    return float((to_dct(z) - to_dct(z_src))[..., LOW].abs().mean())


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"sm": run(), "psr": run(LAMBDA_PSR)}


# --------------------------------------------------------------------------------------------------------
# The analytic stand-in itself


def test_dct_basis_matches_the_suites_psr_dct():
    d = dct_matrix(H, torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(H, dtype=torch.float64), atol=1e-12)
    x = torch.randn(3, C, H, W, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(to_dct(x), dct2(x), atol=1e-5)
    assert torch.allclose(from_dct(to_dct(x)), x, atol=1e-5)


@pytest.mark.parametrize("t", [21, 201, 499])
def test_analytic_eps_is_the_regression_of_eps_on_z_t(t):
    """ε* = E[ε | z_t]: per DCT coordinate the least-squares slope/intercept of E on Z_t match the formula,
    and ε* attains the minimum denoising error 1 − (1−ᾱ)/v_t, which a mis-scaled predictor does not."""
    n = 4096
    generator = torch.Generator().manual_seed(2 + t)
    alpha_bar = SCHEDULE.alpha_bar(t)
    x = STYLE.sample(n, generator).double()
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    z_t = math.sqrt(alpha_bar) * x + math.sqrt(1 - alpha_bar) * eps
    big_e, big_z = to_dct(eps), to_dct(z_t)
    zc = big_z - big_z.mean(0)
    slope = (zc * big_e).mean(0) / zc.square().mean(0)
    intercept = big_e.mean(0) - slope * big_z.mean(0)
    v_t = alpha_bar * STYLE.std.double().square() + 1 - alpha_bar
    want_slope = math.sqrt(1 - alpha_bar) / v_t
    want_intercept = -want_slope * math.sqrt(alpha_bar) * STYLE.mean.double()
    residual = (1 - (1 - alpha_bar) / v_t).sqrt()                  # std of E given Z_t
    var_z = zc.square().mean(0)
    slope_se = residual / (var_z * n).sqrt()
    intercept_se = residual / math.sqrt(n) * (1 + big_z.mean(0).square() / var_z).sqrt()
    assert ((slope - want_slope).abs() / slope_se).max() < 5.0
    assert ((intercept - want_intercept).abs() / intercept_se).max() < 5.0

    prediction = STYLE.eps(z_t.float(), alpha_bar).double()
    mse = (prediction - eps).square().mean()
    floor = (1 - (1 - alpha_bar) / v_t).mean()
    assert abs(float(mse / floor) - 1.0) < 0.02
    assert (1.1 * prediction - eps).square().mean() > mse
    assert (SOURCE.eps(z_t.float(), alpha_bar).double() - eps).square().mean() > mse


def test_cfg_is_the_identity_when_cond_equals_uncond():
    a = torch.randn(4, C, H, W, generator=torch.Generator().manual_seed(3))
    for scale in (1.0, 4.5, 7.5):
        assert torch.equal(cfg(a, a, scale), a)


# --------------------------------------------------------------------------------------------------------
# (3) scale and wiring of one gradient


@pytest.mark.parametrize("relevance", [False, True])
@pytest.mark.parametrize("exact_posterior", [False, True])
@pytest.mark.parametrize("step", [0, 57, 190])
def test_gradient_is_w_t_times_the_score_difference(step, exact_posterior, relevance):
    method, denoisers = build_method(relevance=relevance, exact_posterior=exact_posterior)
    z_src = source_particles()
    z = z_src + 0.3 * torch.randn(z_src.shape, generator=torch.Generator().manual_seed(4))
    denoisers.observe(z)
    gradient = method.gradient(StepState(step, ITERS, z, z_src, RandomStreams(SEED, IMAGE_ID)))

    # t from ANS on the 500-step grid: odd, in [21, t_upper(step)], t_prev the previous grid point
    t, t_prev = gradient.t, gradient.t_prev
    assert t % 2 == 1 and 21 <= t <= t_upper(method.grid, step, ITERS) and t_prev == t - 2
    # the same ε the method drew (same seed, image id, step and stream), z_t and w_t by hand from the tables
    eps = RandomStreams(SEED, IMAGE_ID).normal(step, "eps", z.shape)
    ab = SCHEDULER.alphas_cumprod.double()
    ab_t, ab_prev, beta_t = float(ab[t]), float(ab[t_prev]), float(SCHEDULER.betas.double()[t])
    z_t = math.sqrt(ab_t) * z + math.sqrt(1 - ab_t) * eps
    step_beta = 1 - ab_t / ab_prev if exact_posterior else beta_t
    w_t = (1 - ab_prev) / (1 - ab_t) * step_beta
    assert gradient.diagnostics["w_t"] == pytest.approx(w_t, rel=1e-12)
    assert 8e-4 < w_t < (1.1e-2 if exact_posterior else 5e-3)

    fake = DiagonalGaussian.fit(z)
    expected = w_t * (STYLE.eps(z_t, ab_t) - fake.eps(z_t, ab_t))   # CFG = identity, R ≡ 1 (see analytic.py)
    assert gradient.nonfinite == 0
    assert torch.allclose(gradient.g, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
    # batched cond/uncond CFG calls: style 2B + fake 2B (+ SAGR's edit/uncond 2B), counted per row
    assert gradient.forwards == (6 if relevance else 4) * B

    # the loop's reduction: ∂/∂z ½·(1/numel)·Σ(z − sg(z − g))² = g/numel. The trick recovers g as
    # z − (z − g) in float32, so only up to the rounding of z (an ulp of |z| ≈ 1e-7 against |g| ≈ 1e-4)
    leaf = z.clone().requires_grad_(True)
    distillation_loss(leaf, gradient.g, gradient_scale(loop_config(), leaf)).backward()
    ulp = torch.finfo(torch.float32).eps * float(z.abs().max())
    assert torch.allclose(leaf.grad * z.numel(), gradient.g, rtol=1e-6, atol=2 * ulp)


# --------------------------------------------------------------------------------------------------------
# (1) style matching moves source particles to the style, with the right sign


def test_style_matching_moves_particles_from_source_to_style(runs):
    z_src, z = runs["sm"]
    kl_before, kl_after = fit(z_src).kl_to(STYLE), fit(z).kl_to(STYLE)
    moments_before, moments_after = standardised_moment_error(z_src), standardised_moment_error(z)
    assert kl_before > 50.0                          # a real gap to close (≈ 79 nats over 128 coordinates)
    assert kl_after < kl_before / 1000, (kl_before, kl_after)
    assert moments_after < moments_before / 50, (moments_before, moments_after)
    for band in (LOW, HIGH):
        assert standardised_moment_error(z, band) < standardised_moment_error(z_src, band) / 10


def test_first_steps_reduce_the_error_and_the_flipped_sign_increases_it():
    """Every one of the first 20 iterations lowers the KL; the same run with −g raises it at every one.
    (Iteration 0 is a no-op: the linear warm-up starts at lr = 0, as in the release's schedule.)"""
    forward, flipped = [], []
    z_src, _ = run(stop=20, history=forward)
    run(sign=-1.0, stop=20, history=flipped)
    kl_before = fit(z_src).kl_to(STYLE)
    assert forward[0] == pytest.approx(kl_before, rel=1e-6) and flipped[0] == pytest.approx(kl_before, rel=1e-6)
    assert all(b < a for a, b in zip(forward, forward[1:])), forward
    assert all(b > a for a, b in zip(flipped, flipped[1:])), flipped
    assert forward[-1] < kl_before / 4, (kl_before, forward[-1])
    assert flipped[-1] > kl_before * 3, (kl_before, flipped[-1])


# --------------------------------------------------------------------------------------------------------
# (2) PSR keeps each particle's low frequencies while the high frequencies still take the style


def test_psr_keeps_low_frequencies_while_high_frequencies_take_the_style(runs):
    z_src, z_sm = runs["sm"]
    _, z_psr = runs["psr"]
    assert progressive_threshold(72, H, W) == 2 and progressive_threshold(71, H, W) == 1  # LOW's t range

    moved_sm, moved_psr = low_frequency_displacement(z_sm, z_src), low_frequency_displacement(z_psr, z_src)
    assert moved_psr < moved_sm / 5, (moved_sm, moved_psr)

    low_src, low_sm, low_psr = (fit(z).kl_to(STYLE, LOW) for z in (z_src, z_sm, z_psr))
    assert low_sm < low_src / 100, (low_src, low_sm)      # without PSR the low band takes the style …
    assert low_psr > 0.5 * low_src, (low_src, low_psr)    # … with PSR it stays the source's

    high_src, high_psr = fit(z_src).kl_to(STYLE, HIGH), fit(z_psr).kl_to(STYLE, HIGH)
    assert high_psr < high_src / 100, (high_src, high_psr)
