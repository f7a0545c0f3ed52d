"""Score Distillation Sampling (Poole et al., DreamFusion, 2022): g = w(t)(ε̂(z_t; y_tgt) − ε).

Reference for the ``official`` profile: threestudio ``stable_diffusion_guidance.py`` (``compute_grad_sds``,
``weighting_strategy``) and its 2-D playground; the PDS repo's ``method="sds"`` is the same gradient with
CFG-D 100 (references.md, "Baselines").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from sms.diffusion import add_noise
from sms.method import (
    Branch,
    Gradient,
    PriorConfig,
    ScoreDistillation,
    StepState,
    count_nonfinite,
    guided_scores,
    methods,
    prior_network,
)


def weight_sds(alpha_bar_t: float) -> float:
    """w(t) = 1 − ᾱ_t (threestudio ``weighting_strategy="sds"``; DreamFusion's σ_t²)."""
    return 1.0 - alpha_bar_t


def weight_uniform(alpha_bar_t: float) -> float:
    """w(t) = 1 (threestudio ``"uniform"``)."""
    return 1.0


def weight_fantasia3d(alpha_bar_t: float) -> float:
    """w(t) = √ᾱ_t (1 − ᾱ_t) (threestudio ``"fantasia3d"``)."""
    return alpha_bar_t ** 0.5 * (1.0 - alpha_bar_t)


WEIGHTINGS: dict[str, Callable[[float], float]] = {
    "sds": weight_sds, "uniform": weight_uniform, "fantasia3d": weight_fantasia3d,
}


def sds_gradient(eps_hat: torch.Tensor, eps: torch.Tensor, weight: float) -> torch.Tensor:
    """g = w(t)(ε̂ − ε) (DreamFusion eq. 3, without the U-Net Jacobian)."""
    return weight * (eps_hat - eps)


@dataclass
class SDSConfig(PriorConfig):
    guidance_scale: float = 100.0   # CFG-D (diffusers convention, sms.diffusion.cfg); CFG-T s ≡ CFG-D s + 1
    weighting: str = "sds"          # sds (1 − ᾱ_t) | uniform | fantasia3d (√ᾱ_t(1 − ᾱ_t))

    def __post_init__(self):
        super().__post_init__()
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown SDS weighting {self.weighting!r}; use one of {', '.join(WEIGHTINGS)}")


@methods.register("sds")
class ScoreDistillationSampling(ScoreDistillation):
    """g = w(t)(CFG_s(ε_prior(z_t; y_tgt), ε_prior(z_t; ∅)) − ε), one batched cond/uncond call (2 forwards).

    Profiles:
    - ``official`` — threestudio SDS: CFG-T 100, i.e. ``guidance_scale=101`` in the CFG-D convention of
      sms.diffusion.cfg (ε_c + 100(ε_c − ε_u) = ε_u + 101(ε_c − ε_u)); t ~ U{20, …, 980}; w = 1 − ᾱ_t;
      AdamW lr 0.1, weight decay 0, linear warm-up 100 then cosine with horizon 1.5·N; N = 1000 (the 2-D
      playground); init from the source latent; no identity loss. threestudio reduces with ½·sum/batch, the
      loop with ½·mean: a constant factor AdamW ignores (up to its ε = 1e-8).
    - ``harmonised`` (default) — SMS's optimiser, step budget, ANS timesteps and seeds (LoopConfig
      defaults), no identity loss (SDS has none).
    """

    Config = SDSConfig
    default_profile = "harmonised"
    profiles = {
        "official": {
            "method": {"guidance_scale": 101.0, "weighting": "sds", "t_sampler": "range",
                       "t_sampler_options": {"low": 20, "high": 981}},
            "loop": {"iters": 1000, "optimizer": "adamw", "lr": 0.1, "weight_decay": 0.0,
                     "schedule": "warmup_cosine", "warmup": 100, "cosine_horizon": 1.5,
                     "identity": "none", "lambda_identity": 0.0, "init": "sample"},
        },
        "harmonised": {"method": {}, "loop": {"identity": "none"}},
    }

    @torch.no_grad()
    def gradient(self, state: StepState) -> Gradient:
        draw = self.draw_timestep(state)
        eps = self.draw_noise(state)
        alpha_bar_t = self.per_sample(self.schedule.alpha_bar, draw.t)
        weight = self.per_sample(lambda t: WEIGHTINGS[self.config.weighting](self.schedule.alpha_bar(t)), draw.t)
        network = prior_network(self.config.prior)
        with self.denoisers.counting() as forwards:
            z_t = add_noise(state.z, eps, alpha_bar_t)
            (eps_hat,) = guided_scores(self.denoisers, [Branch(network, z_t, self.cond.target)],
                                       self.timestep_tensor(draw.t), self.cond.uncond, self.config.guidance_scale)
            spent = forwards()
        g, nonfinite = count_nonfinite(sds_gradient(eps_hat, eps, weight))
        return Gradient(g, draw.t, draw.t_prev, spent, nonfinite, {"w_t": weight})
