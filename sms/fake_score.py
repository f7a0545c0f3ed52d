"""The fake score ε_fake^φ's denoising update (spec §8): ᾱ_t²-weighted ε-MSE on the conditional branch."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sms.diffusion import NoiseSchedule, add_noise
from sms.models.denoisers import Denoisers


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
        self.parameters = denoisers.fake_parameters()
        if not self.parameters:
            raise ValueError("the model stack has no fake LoRA (ModelSpec.with_fake=False)")
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay)

    def step(self, z: torch.Tensor, eps: torch.Tensor, t: int, emb: torch.Tensor) -> float:
        alpha_bar_t = self.schedule.alpha_bar(t)
        z_t = add_noise(z.detach(), eps, alpha_bar_t)
        with torch.enable_grad():
            eps_pred = self.denoisers.fake(z_t, torch.tensor(t, device=z.device), emb, trainable=True)
            loss = fake_denoising_loss(eps_pred, eps, alpha_bar_t)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        return float(loss.detach())
