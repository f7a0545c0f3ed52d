"""The one gradient interface every score-distillation method implements (SMS, SDS, DDS, PDS, VSD, …).

A method is a registered class with a ``Config`` dataclass. Given the current latent, the source latent,
the step and the shared random streams it returns its gradient g (∂L/∂z before the loop's reduction),
with diagnostics and the UNet forwards it spent, and may update auxiliary state (e.g. a fake LoRA).
Files, optimisers of z, schedules, identity losses, decoding and progress bars belong to the loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from sms.diffusion import NoiseSchedule, ddim_grid
from sms.models.stack import ModelStack
from sms.registry import Registry
from sms.rng import RandomStreams
from sms.timesteps import GRID_STEPS, Draw, TimestepSampler, build_sampler

methods: Registry = Registry("score-distillation method")


@dataclass(frozen=True)
class Prompts:
    """The texts a method may condition on; embeddings are computed once by :class:`Conditioning`."""

    style: str                  # the style prompt, e.g. "watercolor style"
    caption: str = ""           # content caption, e.g. "a close up of a dog"

    @property
    def target(self) -> str:
        """y = "{style prompt}, {caption}" (spec §4)."""
        return f"{self.style}, {self.caption}" if self.caption else self.style

    @property
    def source(self) -> str:
        return self.caption

    @property
    def edit(self) -> str:
        return f"Turn into {self.style}"


class Conditioning:
    """Cached text embeddings: ``cond.target``, ``cond.uncond``, ``cond.source``, ``cond.edit``."""

    def __init__(self, models: ModelStack, prompts: Prompts):
        self.prompts = prompts
        texts = [prompts.target, "", prompts.source, prompts.edit]
        self.target, self.uncond, self.source, self.edit = models.embed(texts).split(1)

    def pair(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return torch.cat([first, second])


@dataclass
class StepState:
    step: int
    num_steps: int
    z: torch.Tensor          # current latent (detached, fp32)
    z_src: torch.Tensor      # source latent
    streams: RandomStreams


@dataclass
class Gradient:
    g: torch.Tensor
    t: int
    t_prev: int
    forwards: int
    nonfinite: int = 0
    diagnostics: dict[str, float] = field(default_factory=dict)


class ScoreDistillation:
    """Base class: subclasses set ``Config`` and implement :meth:`gradient`."""

    Config: ClassVar[type]
    #: named settings: {"profile": {"method": {...Config fields}, "loop": {...LoopConfig fields}}}
    profiles: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    default_profile: ClassVar[str] = "harmonised"

    def __init__(self, config, models: ModelStack, prompts: Prompts):
        self.config = config
        self.models = models
        self.denoisers = models.denoisers
        self.cond = Conditioning(models, prompts)
        self.schedule = NoiseSchedule.from_scheduler(models.scheduler)
        self.grid = ddim_grid(models.scheduler, GRID_STEPS)
        self.sampler: TimestepSampler = build_sampler(config.t_sampler, **getattr(config, "t_sampler_options", {}))

    def draw_timestep(self, state: StepState, stream: str = "t",
                      sampler: TimestepSampler | None = None) -> Draw:
        draw = (sampler or self.sampler).sample(self.grid, state.step, state.num_steps,
                                                state.streams.generator(state.step, stream))
        state.streams.record_timestep(state.step, stream, draw.t)
        return draw

    def draw_noise(self, state: StepState, stream: str = "eps") -> torch.Tensor:
        return state.streams.normal(state.step, stream, state.z.shape, device=state.z.device)

    def timestep_tensor(self, t: int) -> torch.Tensor:
        return torch.tensor(t, device=self.models.device)

    def gradient(self, state: StepState) -> Gradient:
        raise NotImplementedError

    def update(self, state: StepState) -> dict[str, float]:
        """Auxiliary update after z moved (``state.z`` is the new latent). Default: nothing."""
        return {}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {}


def count_nonfinite(g: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Zero non-finite entries (as the release's nan_to_num does) and say how many there were."""
    bad = ~torch.isfinite(g)
    count = int(bad.sum())
    return (torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0) if count else g), count
