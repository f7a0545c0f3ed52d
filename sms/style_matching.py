"""Style Matching Score (spec §4–§8) as a registered score-distillation method."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sms.diffusion import add_noise, cfg, posterior_variance
from sms.fake_score import FakeScoreConfig, FakeScoreTrainer
from sms.method import Gradient, ScoreDistillation, StepState, count_nonfinite, methods
from sms.refine import relevance_map
from sms.rng import VAE_STEP
from sms.timesteps import build_sampler


@dataclass
class SMSConfig:
    t_sampler: str = "ans"                 # ans | uniform | linear (ablations)
    t_sampler_options: dict = field(default_factory=dict)
    guidance_scale: float = 4.5            # CFG on ε_style
    fake_guidance_scale: float = 4.5       # CFG on ε_fake (release); VSD/DMD2 use 1
    exact_posterior: bool = False          # w_t with the release's single-step β (False) or the exact form
    relevance: bool = True                 # SAGR's R (False: R ≡ 1)
    fake: FakeScoreConfig = field(default_factory=FakeScoreConfig)


@methods.register("sms")
class StyleMatchingScore(ScoreDistillation):
    """g = R ⊙ w_t (CFG(ε_style) − CFG(ε_fake)); the fake LoRA then takes one denoising step."""

    Config = SMSConfig
    default_profile = "official"
    profiles = {
        "official": {"method": {}, "loop": {"identity": "psr"}},
        "corrected": {"method": {"exact_posterior": True, "fake_guidance_scale": 1.0}, "loop": {"identity": "psr"}},
    }

    def __init__(self, config: SMSConfig, models, prompts):
        super().__init__(config, models, prompts)
        self.fake_sampler = build_sampler(config.fake.t_sampler, **config.fake.t_sampler_options)
        self.trainer = FakeScoreTrainer(self.denoisers, self.schedule, config.fake)

    def begin(self, streams) -> None:
        self.trainer.reset(streams.generator(VAE_STEP, "fake_init"))

    def _guided(self, network, z_t: torch.Tensor, t: torch.Tensor, scale: float) -> torch.Tensor:
        if scale == 1.0:
            return network(z_t, t, self.cond.target)
        cond, uncond = network(torch.cat([z_t, z_t]), t, torch.cat([self.cond.target, self.cond.uncond])).chunk(2)
        return cfg(cond, uncond, scale)

    def _relevance(self, z_src: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
        z_t_src = add_noise(z_src, eps, alpha_bar_t)
        edit, uncond = self.denoisers.real(torch.cat([z_t_src, z_t_src]), t,
                                           torch.cat([self.cond.edit, self.cond.uncond])).chunk(2)
        return relevance_map(edit - uncond)

    @torch.no_grad()
    def gradient(self, state: StepState) -> Gradient:
        draw = self.draw_timestep(state)
        eps = self.draw_noise(state)
        alpha_bar_t = self.schedule.alpha_bar(draw.t)
        t = self.timestep_tensor(draw.t)
        with self.denoisers.counting() as forwards:
            z_t = add_noise(state.z, eps, alpha_bar_t)
            eps_style = self._guided(self.denoisers.style, z_t, t, self.config.guidance_scale)
            eps_fake = self._guided(self.denoisers.fake, z_t, t, self.config.fake_guidance_scale)
            w_t = posterior_variance(self.schedule, draw.t, draw.t_prev, exact=self.config.exact_posterior)
            g, nonfinite = count_nonfinite(w_t * (eps_style - eps_fake))
            if self.config.relevance:
                g = g * self._relevance(state.z_src, eps, t, alpha_bar_t)
            spent = forwards()
        return Gradient(g, draw.t, draw.t_prev, spent, nonfinite, {"w_t": w_t, "g_abs_mean": float(g.abs().mean())})

    def update(self, state: StepState) -> dict[str, float]:
        draw = self.draw_timestep(state, "fake_t", self.fake_sampler)
        eps = self.draw_noise(state, "fake_eps")
        with self.denoisers.counting() as forwards:
            loss = self.trainer.step(state.z, eps, draw.t, self.cond.target)
            spent = forwards()
        return {"fake_loss": loss, "fake_t": draw.t, "forwards": spent}

    def trainable_state(self):
        return {f"fake.{i}": p for i, p in enumerate(self.trainer.parameters)}
