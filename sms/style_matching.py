"""Style Matching Score (spec §4–§8) as a registered score-distillation method."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sms.deviations import corrected_overrides
from sms.diffusion import add_noise, cfg, posterior_variance
from sms.fake_score import FakeScoreConfig, FakeScoreTrainer
from sms.method import (
    Gradient,
    ScoreDistillation,
    StepState,
    count_nonfinite,
    methods,
    per_row,
)
from sms.models.denoisers import FAKE, REAL, STYLE
from sms.refine import relevance_map
from sms.rng import VAE_STEP
from sms.timesteps import build_sampler, row_timesteps


@dataclass
class SMSConfig:
    t_sampler: str = "ans"                 # ans | uniform | linear (ablations)
    t_sampler_options: dict = field(default_factory=dict)
    guidance_scale: float = 4.5            # CFG on ε_style
    fake_guidance_scale: float = 4.5       # CFG on ε_fake (release); VSD/DMD2 use 1
    exact_posterior: bool = False          # w_t with the release's single-step β (False) or the exact form
    relevance: bool = True                 # SAGR's R (False: R ≡ 1)
    # batched: style, fake and real rows in one UNet call (peft mixed adapters); sequential: one call per
    # network; reference: the release's order of work, wasted passes included (benchmarks and tests only)
    execution: str = "batched"
    fake: FakeScoreConfig = field(default_factory=FakeScoreConfig)


@methods.register("sms")
class StyleMatchingScore(ScoreDistillation):
    """g = R ⊙ w_t (CFG(ε_style) − CFG(ε_fake)); the fake LoRA then takes one denoising step.

    Profiles: ``official`` reproduces the release, quirks included; ``corrected`` fixes the quirks
    :mod:`sms.deviations` marks (exact posterior, no CFG on the fake score) — each listed there with why.
    Neither switches on the opt-in settings that also reproduce the release's pixels (its LoRA merge, image
    input and output, portrait PSR): ``sms.deviations.release_pixel_settings()`` lists them.
    """

    Config = SMSConfig
    default_profile = "official"
    profiles = {
        "official": {"method": {}, "loop": {"identity": "psr"}},
        "corrected": {"method": corrected_overrides(), "loop": {"identity": "psr"}},
    }

    def __init__(self, config: SMSConfig, models, prompts):
        super().__init__(config, models, prompts)
        self.fake_sampler = build_sampler(config.fake.t_sampler, **config.fake.t_sampler_options)
        self.trainer = FakeScoreTrainer(self.denoisers, self.schedule, config.fake)

    def begin(self, streams) -> None:
        self.trainer.reset(streams.generator(VAE_STEP, "fake_init"))

    def auxiliary_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.optim.Optimizer]]:
        return {f"fake.{name}": param for name, param in self.trainer.named}, {"fake": self.trainer.optimizer}

    def _requests(self, z_t: torch.Tensor, z_t_src: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(network, z, y) rows: style and fake, cond + uncond unless their CFG scale is 1, and SAGR's edit pair."""
        target, uncond, edit = (per_row(emb, z_t) for emb in (self.cond.target, self.cond.uncond, self.cond.edit))

        def scored(network: str, scale: float):
            if scale == 1.0:
                return network, z_t, target
            return network, torch.cat([z_t, z_t]), torch.cat([target, uncond])

        requests = [scored(STYLE, self.config.guidance_scale), scored(FAKE, self.config.fake_guidance_scale)]
        if self.config.relevance:
            requests.append((REAL, torch.cat([z_t_src, z_t_src]), torch.cat([edit, uncond])))
        return requests

    def _passes(self, z_t: torch.Tensor, z_t_src: torch.Tensor, t: torch.Tensor):
        """(ε̂_style, ε̂_fake, d): the guided scores and SAGR's edit direction d = ε(y_edit) − ε(∅) (None without SAGR)."""
        requests = self._requests(z_t, z_t_src)
        if self.config.execution == "batched":
            outputs = self.denoisers.batched(requests, t)
        else:
            networks = {STYLE: self.denoisers.style, FAKE: self.denoisers.fake, REAL: self.denoisers.real}
            outputs = [networks[network](z, row_timesteps(t, len(z)), y) for network, z, y in requests]
        scales = (self.config.guidance_scale, self.config.fake_guidance_scale)
        eps_style, eps_fake = (cfg(*out.chunk(2), scale) if scale != 1.0 else out for out, scale in zip(outputs, scales))
        edit = None
        if self.config.relevance:
            edit_cond, edit_uncond = outputs[2].chunk(2)
            edit = edit_cond - edit_uncond
        return eps_style, eps_fake, edit

    def _reference_passes(self, z_t: torch.Tensor, z_t_src: torch.Tensor, t: torch.Tensor):
        """The release's order of work (benchmark and test baseline only): separate passes, and the
        relevance pass run with autograd on, building a graph nobody uses."""
        cond, d = self.cond, self.denoisers
        pair = lambda y: torch.cat([per_row(y, z_t), per_row(cond.uncond, z_t)])  # noqa: E731
        t = row_timesteps(t, 2 * len(z_t))
        eps_style = cfg(*d.style(torch.cat([z_t, z_t]), t, pair(cond.target)).chunk(2), self.config.guidance_scale)
        eps_fake = cfg(*d.fake(torch.cat([z_t, z_t]), t, pair(cond.target)).chunk(2), self.config.fake_guidance_scale)
        edit = None
        if self.config.relevance:
            with torch.enable_grad():
                source = z_t_src.detach().requires_grad_(True)
                edit_cond, edit_uncond = d.real(torch.cat([source, source]), t, pair(cond.edit)).chunk(2)
                edit = (edit_cond - edit_uncond).detach()
        return eps_style, eps_fake, edit

    @torch.no_grad()
    def gradient(self, state: StepState) -> Gradient:
        draw = self.draw_timestep(state)
        eps = self.draw_noise(state)
        alpha_bar_t = self.per_sample(self.schedule.alpha_bar, draw.t)
        t = self.timestep_tensor(draw.t)
        z_t, z_t_src = add_noise(state.z, eps, alpha_bar_t), add_noise(state.z_src, eps, alpha_bar_t)
        with self.denoisers.counting() as forwards:
            passes = self._reference_passes if self.config.execution == "reference" else self._passes
            eps_style, eps_fake, edit = passes(z_t, z_t_src, t)
            spent = forwards()
        w_t = self.per_sample(lambda t, t_prev: posterior_variance(self.schedule, t, t_prev,
                                                                    exact=self.config.exact_posterior),
                              draw.t, draw.t_prev)
        g, nonfinite = count_nonfinite(w_t * (eps_style - eps_fake))
        if edit is not None:
            g = g * relevance_map(edit)
        return Gradient(g, draw.t, draw.t_prev, spent, nonfinite, {"w_t": w_t})

    def update(self, state: StepState) -> dict[str, float]:
        draw = self.draw_timestep(state, "fake_t", self.fake_sampler)
        eps = self.draw_noise(state, "fake_eps")
        with self.denoisers.counting() as forwards:
            wasted = per_row(self.cond.uncond, state.z) if self.config.execution == "reference" else None
            loss = self.trainer.step(state.z, eps, draw.t, per_row(self.cond.target, state.z), discarded_uncond=wasted)
            spent = forwards()
        return {"fake_loss": loss, "fake_t": draw.t, "forwards": spent}
