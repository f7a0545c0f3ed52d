"""Exact ε-predictions for Gaussian latents, and a model stack that serves them to the real SMS code.

Gaussian data, diagonal in the orthonormal 2-D DCT-II basis
------------------------------------------------------------
A latent field x ∈ ℝ^{C×h×w} is written through its DCT coefficients X = D_h x D_wᵀ (per channel; D is
the orthonormal DCT-II matrix, so x ↦ X is an orthogonal change of basis). A :class:`DiagonalGaussian`
is the law X ~ N(m, diag(s²)), independent coordinates, so every frequency (u, v) of every channel can be
given its own mean and power.

Its optimal ε-prediction at every t. Forward noising z_t = √ᾱ x + √(1−ᾱ) ε with ε ~ N(0, I) independent
of x. Because the DCT is orthogonal, E = DCT(ε) is again N(0, I) and Z_t = DCT(z_t) = √ᾱ X + √(1−ᾱ) E,
so per coordinate (Z_t, E) is jointly Gaussian with

    E[Z_t] = √ᾱ m,   Var Z_t = ᾱ s² + 1 − ᾱ =: v_t,   Cov(E, Z_t) = √(1−ᾱ),   E[E] = 0.

The minimiser of the denoising loss E‖ε̂(z_t) − ε‖² over all functions is the conditional mean
E[ε | z_t], and for jointly Gaussian variables the conditional mean is the linear regression

    E[E | Z_t] = Cov(E, Z_t)/Var(Z_t) · (Z_t − E[Z_t]) = √(1−ᾱ) (Z_t − √ᾱ m) / (ᾱ s² + 1 − ᾱ),

elementwise in the DCT basis; ε*(z_t) = DCTᵀ of that. (Equivalently Tweedie: ε* = −√(1−ᾱ) ∇ log p_t(z_t)
with p_t = N(√ᾱ m, diag(v_t)).) At s = 1, m = 0 this is √(1−ᾱ) z_t, the ε-prediction of N(0, I).
``test_gaussian_closed_form.py`` checks the formula by Monte-Carlo regression.

The stand-in denoisers
----------------------
* ``style``: ε* of the style Gaussian; ``real``: ε* of the source Gaussian (only SAGR uses it);
* ``fake``:  ε* of the Gaussian moment-matched to the *current particles* (per-coordinate mean and
  population variance of their DCT coefficients), refitted by :meth:`AnalyticDenoisers.observe` whenever
  the particles move. Among ε-predictors of Gaussian laws this fit is the one that a fake score trained to
  convergence on the particles (the fake LoRA of spec §8 in its ideal limit) reproduces: its marginal at
  every t has the particles' moments.
The text embedding is ignored, so cond and uncond predictions coincide and CFG_s(ε, ε) = ε + s·0 = ε for
every scale s: the guidance scales of SMSConfig are then the identity, exactly (no rounding: s·0 = 0).
For the same reason SAGR's edit direction d = ε_real(·; y_edit) − ε_real(·; ∅) is identically zero and
its relevance map is the flat map R ≡ 1 (refine.relevance_map's "all ones if max = min").
Forwards are counted per sample row, like :class:`sms.models.denoisers.Denoisers`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import torch

from sms.diffusion import NoiseSchedule
from sms.timesteps import row_timesteps


@lru_cache(maxsize=None)
def dct_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II matrix, D[k, j] = c_k cos(π(2j+1)k/(2n)), c_0 = √(1/n), c_k = √(2/n).

    Written out here (not taken from sms.spectrum) so the analytic side is independent of the code
    under test; the tests assert that the two agree."""
    k = torch.arange(n, dtype=torch.float64).view(-1, 1)
    j = torch.arange(n, dtype=torch.float64).view(1, -1)
    d = torch.cos(math.pi * (2 * j + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype)


def to_dct(x: torch.Tensor) -> torch.Tensor:
    d_h, d_w = dct_matrix(x.shape[-2], x.dtype), dct_matrix(x.shape[-1], x.dtype)
    return d_h @ x @ d_w.T


def from_dct(coefficients: torch.Tensor) -> torch.Tensor:
    d_h = dct_matrix(coefficients.shape[-2], coefficients.dtype)
    d_w = dct_matrix(coefficients.shape[-1], coefficients.dtype)
    return d_h.T @ coefficients @ d_w


def frequency_index(h: int, w: int) -> torch.Tensor:
    """u + v for every DCT coefficient (the quantity PSR's low-pass mask thresholds)."""
    return torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1)


@dataclass
class DiagonalGaussian:
    """X = DCT(x) ~ N(mean, diag(std²)); mean and std have shape (C, h, w)."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, particles: torch.Tensor) -> "DiagonalGaussian":
        """Moment match (per-coordinate mean, population variance) to particles of shape (B, C, h, w)."""
        coefficients = to_dct(particles.detach().float())
        return cls(coefficients.mean(0), coefficients.var(0, unbiased=False).sqrt())

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        xi = torch.randn((batch, *self.mean.shape), generator=generator)
        return from_dct(self.mean + self.std * xi)

    def eps(self, z_t: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        """ε*(z_t) = DCTᵀ[√(1−ᾱ)(DCT z_t − √ᾱ m)/(ᾱ s² + 1 − ᾱ)] (module docstring), in z_t's dtype."""
        mean, std = self.mean.to(z_t.dtype), self.std.to(z_t.dtype)
        variance = alpha_bar * std.square() + (1.0 - alpha_bar)
        prediction = math.sqrt(1.0 - alpha_bar) * (to_dct(z_t) - math.sqrt(alpha_bar) * mean) / variance
        return from_dct(prediction)

    def kl_to(self, other: "DiagonalGaussian", where: torch.Tensor | None = None) -> float:
        """KL(self ‖ other) = ½Σ[r + (m − m′)²/s′² − 1 − ln r], r = s²/s′², over the selected coordinates."""
        ratio = (self.std.double() / other.std.double()).square()
        terms = 0.5 * (ratio + (self.mean.double() - other.mean.double()).square() / other.std.double().square()
                       - 1.0 - ratio.log())
        if where is not None:
            terms = terms[..., where]
        return float(terms.sum())


class AnalyticDenoisers:
    """Duck-types :class:`sms.models.denoisers.Denoisers` for StyleMatchingScore and FakeScoreTrainer."""

    def __init__(self, schedule: NoiseSchedule, source: DiagonalGaussian, style: DiagonalGaussian):
        self.schedule = schedule
        self.source = source
        self.style_law = style
        self.fake_law: DiagonalGaussian | None = None
        self.forwards = 0
        # FakeScoreTrainer needs something to build its AdamW on (and to reset: a "lora_B" is zeroed);
        # the analytic fake has no weights.
        self._dummy = torch.nn.Parameter(torch.zeros(1, 1))

    def observe(self, particles: torch.Tensor) -> None:
        """Refit the fake to the current particles (the ideal fake-LoRA update)."""
        self.fake_law = DiagonalGaussian.fit(particles)

    def fake_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [("analytic.fake.lora_B.weight", self._dummy)]

    def fake_parameters(self) -> list[torch.nn.Parameter]:
        return [param for _, param in self.fake_named_parameters()]

    def _eps(self, law: DiagonalGaussian, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One t for the call (scalar or all equal: the per-image path), else each row at its own t, the
        batch's B per-sample t tiled over the call's stacked rows as Denoisers does (row_timesteps)."""
        self.forwards += z_t.shape[0]
        rows = row_timesteps(t, z_t.shape[0]).flatten().tolist() if t.ndim else [int(t)]
        if len(set(rows)) == 1:
            return law.eps(z_t, self.schedule.alpha_bar(int(rows[0])))
        return torch.cat([law.eps(z_t[i:i + 1], self.schedule.alpha_bar(int(row))) for i, row in enumerate(rows)])

    def real(self, z_t, t, emb):
        return self._eps(self.source, z_t, t)

    def style(self, z_t, t, emb):
        return self._eps(self.style_law, z_t, t)

    def fake(self, z_t, t, emb, *, trainable: bool = False):
        if self.fake_law is None:
            raise RuntimeError("call observe(particles) before the fake score is used")
        out = self._eps(self.fake_law, z_t, t)
        return out + 0.0 * self._dummy.sum() if trainable else out  # keeps FakeScoreTrainer's backward valid

    def batched(self, requests, t):
        """Same contract as sms.models.Denoisers.batched: one output per (network, z_t, emb) request."""
        networks = {"real": self.real, "style": self.style, "fake": self.fake}
        return [networks[network](z_t, t, emb) for network, z_t, emb in requests]

    @contextmanager
    def counting(self):
        start = self.forwards
        yield lambda: self.forwards - start


class AnalyticStack:
    """Exactly the attributes ScoreDistillation/StyleMatchingScore read from a ModelStack."""

    def __init__(self, denoisers: AnalyticDenoisers, scheduler):
        self.denoisers = denoisers
        self.scheduler = scheduler
        self.device = torch.device("cpu")

    def embed(self, prompts: list[str]) -> torch.Tensor:
        return torch.zeros(len(prompts), 77, 8)
