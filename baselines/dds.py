"""Delta Denoising Score (Hertz, Aberman & Cohen-Or, ICCV 2023): g = ε̂(z_t^tgt; y_tgt) − ε̂(z_t^src; y_src).

Reference for the ``official`` profile: google/prompt-to-prompt ``DDS_zeroshot.ipynb`` (references.md).
"""
from __future__ import annotations

from dataclasses import dataclass

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
from sms.models.denoisers import REAL


def delta_score(eps_target: torch.Tensor, eps_source: torch.Tensor) -> torch.Tensor:
    """DDS eq. 5: the source branch's score cancels the noisy, prompt-independent part of the target's."""
    return eps_target - eps_source


@dataclass
class DDSConfig(PriorConfig):
    guidance_scale: float = 7.5     # CFG-D on both branches


@methods.register("dds")
class DeltaDenoisingScore(ScoreDistillation):
    """Shared t and ε for z_t^tgt = noise(z) and z_t^src = noise(z_src); y_tgt = "{style}, {caption}", y_src = caption.

    Both branches, cond + uncond, go through ONE batched UNet call (4 forwards); with ``prior="style"`` on a
    shared UNet the target rows are routed to the style adapter in that same call, and only a separate style
    checkpoint needs a second call.

    Profiles:
    - ``official`` — the DDS notebook: CFG-D 7.5; t ~ randint(50, 949); SGD lr 0.1 on
      2000·Σ(z·sg(g))/(H·W) (LoopConfig ``grad_numerator=2000``: effective step ≈ 0.049·g at 64×64),
      weight decay 0, constant lr, 200 steps; init from the VAE posterior **mean**; no identity loss.
      The notebook runs fp16 autocast; the suite computes in the model stack's dtype. The notebook's
      ``load_512`` also centre-crops the input to a square before resizing it to 512×512; the suite does not
      crop (a choice): every method sees the whole image at its aspect ratio, short side → resolution
      (spec §1), so the methods' results stay comparable pixel for pixel and cover the source image.
    - ``harmonised`` (default) — SMS's optimiser, step budget, ANS timesteps and seeds, no identity loss.
    """

    Config = DDSConfig
    default_profile = "harmonised"
    profiles = {
        "official": {
            "method": {"guidance_scale": 7.5, "t_sampler": "range", "t_sampler_options": {"low": 50, "high": 949}},
            "loop": {"iters": 200, "optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "schedule": "constant",
                     "grad_numerator": 2000.0, "identity": "none", "lambda_identity": 0.0, "init": "mean"},
        },
        "harmonised": {"method": {}, "loop": {"identity": "none"}},
    }

    @torch.no_grad()
    def gradient(self, state: StepState) -> Gradient:
        draw = self.draw_timestep(state)
        eps = self.draw_noise(state)
        alpha_bar_t = self.per_sample(self.schedule.alpha_bar, draw.t)
        branches = [Branch(prior_network(self.config.prior), add_noise(state.z, eps, alpha_bar_t), self.cond.target),
                    Branch(REAL, add_noise(state.z_src, eps, alpha_bar_t), self.cond.source)]
        t = self.timestep_tensor(draw.t)
        with self.denoisers.counting() as forwards:
            eps_target, eps_source = guided_scores(self.denoisers, branches, t, self.cond.uncond,
                                                   self.config.guidance_scale)
            spent = forwards()
        g, nonfinite = count_nonfinite(delta_score(eps_target, eps_source))
        return Gradient(g, draw.t, draw.t_prev, spent, nonfinite, {})
