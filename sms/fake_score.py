"""The fake score ε_fake^φ's denoising update (spec §8): ᾱ_t²-weighted ε-MSE on the conditional branch."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sms.diffusion import NoiseSchedule, add_noise
from sms.models import precision
from sms.models.denoisers import Denoisers
from sms.timesteps import per_sample, row_timesteps


@dataclass
class FakeScoreConfig:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    # The release narrows the fake update's range once, for the whole run: idx ∈ [10, 250) ⇒ t ∈ [21, 499].
    t_sampler: str = "uniform"
    t_sampler_options: dict = field(default_factory=lambda: {"min_ratio": 0.02, "max_ratio": 0.5})


def fake_denoising_loss(eps_pred: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float) -> torch.Tensor:
    """mean((ᾱ_t ε_fake(z_t; y) − ᾱ_t ε)²) — the ᾱ_t² weighting is the release's (spec §8)."""
    return (alpha_bar_t * eps_pred - alpha_bar_t * eps).square().mean()


class FakeScoreTrainer:
    """Holds φ's optimiser; one call = one AdamW step on the fake LoRA."""

    def __init__(self, denoisers: Denoisers, schedule: NoiseSchedule, config: FakeScoreConfig):
        self.denoisers = denoisers
        self.schedule = schedule
        self.config = config
        self.named = denoisers.fake_named_parameters()
        self.parameters = [param for _, param in self.named]
        if not self.parameters:
            raise ValueError("the model stack has no fake LoRA (ModelSpec.with_fake=False)")
        self.optimizer = self._new_optimizer()

    def _new_optimizer(self) -> torch.optim.AdamW:
        return torch.optim.AdamW(self.parameters, lr=self.config.lr, betas=self.config.betas,
                                 weight_decay=self.config.weight_decay)

    @torch.no_grad()
    def reset(self, generator: torch.Generator) -> None:
        """Fresh φ for a new image: peft's default init (A Kaiming-uniform, B = 0 ⇒ ε_fake = ε_real),
        drawn from ``generator`` so a run does not depend on which images came before it."""
        for name, param in self.named:
            if "lora_B" in name:
                param.zero_()
            else:
                values = torch.empty(param.shape, dtype=torch.float32)
                torch.nn.init.kaiming_uniform_(values, a=math.sqrt(5), generator=generator)
                param.copy_(values)
        self.optimizer = self._new_optimizer()

    def step(self, z: torch.Tensor, eps: torch.Tensor, t: int | tuple[int, ...], emb: torch.Tensor,
             discarded_uncond: torch.Tensor | None = None) -> torch.Tensor:
        """One AdamW step on φ over z's samples (a tuple t: one per sample, the loss their mean, as DMD's
        shared fake score). ``discarded_uncond`` reproduces the release's wasted unconditional half
        (computed in the same batch, then dropped) for the reference-order benchmark."""
        alpha_bar_t = per_sample(self.schedule.alpha_bar, t, device=z.device)
        z_t = add_noise(z.detach(), eps, alpha_bar_t)
        timestep = torch.tensor(t, device=z.device)
        with torch.enable_grad():
            if discarded_uncond is None:
                eps_pred = self.denoisers.fake(z_t, timestep, emb, trainable=True)
            else:
                both = self.denoisers.fake(torch.cat([z_t, z_t]), row_timesteps(timestep, 2 * len(z_t)),
                                           torch.cat([emb, discarded_uncond]), trainable=True)
                eps_pred = both.chunk(2)[0]
            loss = fake_denoising_loss(eps_pred, eps, alpha_bar_t)
            self.optimizer.zero_grad(set_to_none=True)
            with precision.tf32(self.denoisers.tf32):  # the backward's matmuls as the forward's
                loss.backward()
        self.optimizer.step()
        return loss.detach()
