"""Issue 14's behavioural test: a LINEAR generator trained by ``generator_step`` on Gaussian latents.

Setting (the closed-form scores of analytic.py). Source and style are Gaussian laws diagonal in the DCT basis
of (C, h, w) = (2, 8, 8) latents; the style has a shifted mean and more power at low frequencies (u + v ≤ 2)
and a shifted mean and less power at high ones (u + v ≥ 8). The generator is diagonal in the same basis,

    G(z) = DCTᵀ(a ⊙ DCT z + c),   a = 1, c = 0 at initialisation (the identity),

so its output law is exactly N(a·m_src + c, diag(a²·s_src²)) and every KL below is computed in closed form,
not from samples. What runs is the suite's own ``generator_step`` (the grad trick, then an Adam step on
(a, c)), with per-sample t and ε from ``batch_streams`` and ANS annealed over the training steps; the
methods are the registered SMS, SDS and DDS classes on the analytic stack. SMS's fake score is held at its
ideal limit: the exact ε-prediction of the generator's current output law (a fake LoRA trained to convergence
on the generator's samples, shared over the data set as in DMD).

Closed forms (σ = √(1−ᾱ), v_t(s) = ᾱ s² + 1 − ᾱ, X = DCT of the generator's output, E[·] over ε):
  SMS  E[g] ∝ ε*_style − ε*_fake: zero for every sample iff the output law is the style law ⇒ a* = s_sty/s_src,
       c* = m_sty − a*·m_src.
  SDS  E[g | X] = w σ√ᾱ (X − m_sty)/v_t(s_sty): zero only at X = m_sty for every sample ⇒ a → 0, c → m_sty
       (mode seeking: the output collapses to the style mean, its spread vanishes).
  DDS  E[g | X, X_src] = σ√ᾱ [(X − m_sty)/v_t(s_sty) − (X_src − m_src)/v_t(s_src)] at a fixed t: zero for every
       X_src iff a* = v_t(s_sty)/v_t(s_src), c* = m_sty − a*·m_src (an affine map between the two noised laws).
Asserted [measured, SEED 0, 300 steps of 32 samples]: SMS's KL(output ‖ style) falls ≥ 10⁴× [75.2 → 7e-9
nats] and (a, c) reach the SMS fixed point within 0.01 source-σ RMS [4e-6, 1e-5]; after 20 steps the KL is
≥ 10× lower [35×], with g negated ≥ 1.5× higher [15×]; SDS's spread collapses, max |a| < 0.15 [0.09], onto the
style mean (0.1 σ [0.03]) and its KL ends above the source's [583 vs 75]; DDS's (a, c) reach ITS fixed point
within 0.02 σ [0.004], 0.27 σ away from the style law's.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from analytic import AnalyticDenoisers, AnalyticStack, DiagonalGaussian, frequency_index, from_dct, to_dct

from sms.config import LoopConfig
from sms.diffusion import NoiseSchedule
from sms.generator_step import batch_streams, generator_step
from sms.method import Prompts, StepState, methods
from sms.models.tiny import build_tiny_scheduler
from workflow.discovery import load_methods

load_methods()

SEED = 0
BATCH, C, H, W = 32, 2, 8, 8
STEPS = 300
FREQ = frequency_index(H, W)
LOW, HIGH = FREQ <= 2, FREQ >= 8
DDS_T = 500


def laws() -> tuple[DiagonalGaussian, DiagonalGaussian]:
    s_src = (1.0 / (1.0 + 0.35 * FREQ.float())).expand(C, H, W).clone()
    m_src = torch.zeros(C, H, W)
    m_sty, s_sty = m_src.clone(), s_src.clone()
    for c, (shift, power) in enumerate([(1.0, 1.6), (-1.0, 1.4)]):
        m_sty[c][LOW] += shift * s_src[c][LOW]
        s_sty[c][LOW] *= power
        m_sty[c][HIGH] += 0.8 * shift * s_src[c][HIGH]
        s_sty[c][HIGH] *= 0.6
    return DiagonalGaussian(m_src, s_src), DiagonalGaussian(m_sty, s_sty)


SOURCE, STYLE = laws()
SCHEDULER = build_tiny_scheduler()
SCHEDULE = NoiseSchedule.from_scheduler(SCHEDULER)


class DiagonalLinearGenerator(torch.nn.Module):
    """G(z) = DCTᵀ(a ⊙ DCT z + c); its output law for Gaussian inputs is known exactly."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.ones(C, H, W))
        self.c = torch.nn.Parameter(torch.zeros(C, H, W))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return from_dct(self.a * to_dct(z) + self.c)

    def law(self, source: DiagonalGaussian) -> DiagonalGaussian:
        a, c = self.a.detach(), self.c.detach()
        return DiagonalGaussian(a * source.mean + c, a.abs() * source.std)


def train(name: str, stop: int = STEPS, sign: float = 1.0,
          **method_options) -> tuple[DiagonalLinearGenerator, list[float]]:
    """The first ``stop`` of ``STEPS`` generator steps of method ``name`` (g multiplied by ``sign``); returns G
    and KL(output law ‖ style) after every step."""
    denoisers = AnalyticDenoisers(SCHEDULE, SOURCE, STYLE)
    cls = methods.get(name)
    method = cls(cls.Config(**method_options), AnalyticStack(denoisers, SCHEDULER), Prompts(style="x"))
    if sign != 1.0:
        gradient = method.gradient
        method.gradient = lambda state: replace(gradient(state), g=sign * gradient(state).g)
    generator = DiagonalLinearGenerator()
    denoisers.fake_law = generator.law(SOURCE)

    def ideal_fake_update(state: StepState) -> dict:
        denoisers.fake_law = generator.law(SOURCE)   # the fake at convergence on G's (new) outputs
        return {"forwards": 0}

    method.update = ideal_fake_update
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.03)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / STEPS)
    history = []
    for step in range(stop):
        z_src = SOURCE.sample(BATCH, torch.Generator().manual_seed(SEED * 100_003 + step))
        streams = batch_streams(SEED, [f"gaussian-{step}-{b}" for b in range(BATCH)])
        record, _ = generator_step(generator, method, z_src, streams, step, STEPS, optimizer,
                                   LoopConfig(lambda_identity=0.0))
        if step == 0 and name != "dds":                    # one t per sample (DDS: the fixed-t sampler)
            assert len(record.t) == BATCH and len(set(record.t)) > BATCH // 2
        schedule.step()
        history.append(generator.law(SOURCE).kl_to(STYLE))
    return generator, history


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[DiagonalLinearGenerator, list[float]]]:
    return {"sms": train("sms", relevance=False),
            "sds": train("sds", prior="style", guidance_scale=1.0),
            "dds": train("dds", prior="style", guidance_scale=1.0, t_sampler="range",
                         t_sampler_options={"low": DDS_T, "high": DDS_T + 1})}


def standardised(value: torch.Tensor, target: torch.Tensor) -> float:
    """RMS over coordinates of (value − target)/s_src: errors in units of the source's spread."""
    return float(((value - target) / SOURCE.std).square().mean().sqrt())


def test_sms_moves_the_generators_output_law_to_the_style(trained):
    generator, history = trained["sms"]
    start = SOURCE.kl_to(STYLE)
    assert history[-1] < start / 1e4, (start, history[-1])
    a_star = STYLE.std / SOURCE.std
    assert standardised(generator.a.detach() * SOURCE.std, a_star * SOURCE.std) < 0.01
    assert standardised(generator.c.detach(), STYLE.mean - a_star * SOURCE.mean) < 0.01


def test_sds_collapses_the_output_onto_the_style_mean(trained):
    generator, _ = trained["sds"]
    assert float(generator.a.detach().abs().max()) < 0.15                       # spread → 0
    assert standardised(generator.law(SOURCE).mean, STYLE.mean) < 0.1           # … at the style mean
    assert trained["sds"][1][-1] > SOURCE.kl_to(STYLE)                           # further from the style law


def test_dds_reaches_its_closed_form_fixed_point_not_the_style(trained):
    generator, _ = trained["dds"]
    alpha_bar = SCHEDULE.alpha_bar(DDS_T)
    noised = lambda law: alpha_bar * law.std.square() + 1 - alpha_bar  # noqa: E731  v_t(s)
    a_star = noised(STYLE) / noised(SOURCE)
    c_star = STYLE.mean - a_star * SOURCE.mean
    assert standardised(generator.a.detach() * SOURCE.std, a_star * SOURCE.std) < 0.02
    assert standardised(generator.c.detach(), c_star) < 0.02
    sms_a = STYLE.std / SOURCE.std                   # the fixed points differ measurably
    assert standardised(a_star * SOURCE.std, sms_a * SOURCE.std) > 0.2


def test_the_sign_matters(trained):
    """Over the first 20 steps SMS's KL falls ≥ 10×; stepping along −g instead it rises."""
    start = SOURCE.kl_to(STYLE)
    assert trained["sms"][1][19] < start / 10
    _, flipped = train("sms", stop=20, sign=-1.0, relevance=False)
    assert flipped[-1] > 1.5 * start
