"""Noise-schedule maths shared by every method, one definition each (SD-1.x, spec notation).

ᾱ_t = alphas_cumprod[t], β_t = betas[t]; t_prev is the previous point of the 500-step DDIM grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler


@dataclass(frozen=True)
class NoiseSchedule:
    betas: torch.Tensor           # float64, length T
    alphas_cumprod: torch.Tensor  # float64, length T

    @classmethod
    def from_scheduler(cls, scheduler) -> "NoiseSchedule":
        return cls(scheduler.betas.double().cpu(), scheduler.alphas_cumprod.double().cpu())

    @property
    def num_train_timesteps(self) -> int:
        return len(self.betas)

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t."""
        return float(self.alphas_cumprod[t])

    def beta(self, t: int) -> float:
        """β_t (single training step)."""
        return float(self.betas[t])


def ddim_grid(scheduler, num_steps: int = 500) -> torch.Tensor:
    """Ascending DDIM timesteps (spec §3): leading spacing, steps_offset 1 ⇒ {1, 3, …, 999} for 500."""
    grid = DDIMScheduler.from_config(scheduler.config)
    grid.set_timesteps(num_steps)
    return grid.timesteps.flip(0).long().cpu()


def sigma(alpha_bar_t: float) -> float:
    """σ_t = √(1 − ᾱ_t), the noise scale of z_t."""
    return (1.0 - alpha_bar_t) ** 0.5


def add_noise(z: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
    """z_t = √ᾱ_t z + √(1 − ᾱ_t) ε (spec §4)."""
    return alpha_bar_t ** 0.5 * z + sigma(alpha_bar_t) * eps


def cfg(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """CFG_s(ε_c, ε_u) = ε_u + s(ε_c − ε_u) (diffusers convention; s = 1 returns ε_c)."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def predict_x0(z_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
    """x̂₀ = (z_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t."""
    return (z_t - sigma(alpha_bar_t) * eps) / alpha_bar_t ** 0.5


def ddim_step(z_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, alpha_bar_next: float) -> torch.Tensor:
    """Deterministic DDIM (η = 0; Song et al. 2021, eq. 12): z_{t′} = √ᾱ_{t′} x̂₀ + √(1 − ᾱ_{t′}) ε̂.
    t′ < t denoises; t′ > t is DDIM inversion (the same map run upwards, ε̂ taken at the lower-noise latent)."""
    return alpha_bar_next ** 0.5 * predict_x0(z_t, eps, alpha_bar_t) + sigma(alpha_bar_next) * eps


def step_beta(schedule: NoiseSchedule, t: int, t_prev: int, exact: bool) -> float:
    """β between t_prev and t: the release's single-step β_t, or the exact 1 − ᾱ_t/ᾱ_{t_prev} (spec §4)."""
    if exact:
        return 1.0 - schedule.alpha_bar(t) / schedule.alpha_bar(t_prev)
    return schedule.beta(t)


def posterior_variance(schedule: NoiseSchedule, t: int, t_prev: int, *, exact: bool = False) -> float:
    """σ̃_t² = (1 − ᾱ_{t_prev})/(1 − ᾱ_t) · β — the SMS weight w_t and the PDS noise scale (spec §4)."""
    return (1.0 - schedule.alpha_bar(t_prev)) / (1.0 - schedule.alpha_bar(t)) * step_beta(schedule, t, t_prev, exact)


def posterior_mean_coefficients(schedule: NoiseSchedule, t: int, t_prev: int, *,
                                exact: bool = False) -> tuple[float, float]:
    """(c₀, c₁) of μ = c₀ x̂₀ + c₁ z_t (PDS, references.md): c₀ = √ᾱ_{t′} β/(1−ᾱ_t),
    c₁ = √α (1−ᾱ_{t′})/(1−ᾱ_t), with α = 1 − β (single step) or ᾱ_t/ᾱ_{t′} (exact)."""
    beta = step_beta(schedule, t, t_prev, exact)
    alpha = 1.0 - beta
    ab_t, ab_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    return ab_prev ** 0.5 * beta / (1.0 - ab_t), alpha ** 0.5 * (1.0 - ab_prev) / (1.0 - ab_t)
