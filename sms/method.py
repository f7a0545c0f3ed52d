"""The one gradient interface every score-distillation method implements (SMS, SDS, DDS, PDS, VSD, …).

A method is a registered class with a ``Config`` dataclass. Given the current latent, the source latent,
the step and the shared random streams it returns its gradient g (∂L/∂z before the loop's reduction),
with diagnostics and the UNet forwards it spent, and may update auxiliary state (e.g. a fake LoRA).
Files, optimisers of z, schedules, identity losses, decoding and progress bars belong to the loop.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from sms.diffusion import NoiseSchedule, cfg, ddim_grid
from sms.models.denoisers import REAL, STYLE
from sms.models.stack import ModelStack
from sms.registry import Registry
from sms.rng import RandomStreams
from sms.timesteps import GRID_STEPS, Draw, Draws, TimestepSampler, build_sampler, per_sample

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


#: one image's streams (the per-image path), or one per sample of a batch, each keyed by its own image id
Streams = RandomStreams | Sequence[RandomStreams]


@dataclass
class StepState:
    step: int
    num_steps: int
    z: torch.Tensor          # current latent(s) (detached, fp32), (B, C, h, w)
    z_src: torch.Tensor      # source latent(s)
    streams: Streams         # a sequence: B > 1 samples, each drawing its own t and ε


@dataclass
class Gradient:
    g: torch.Tensor
    t: int | tuple[int, ...]          # a tuple per sample when the state held a batch of streams
    t_prev: int | tuple[int, ...]
    forwards: int
    nonfinite: int | torch.Tensor = 0  # entries zeroed by count_nonfinite
    diagnostics: dict[str, float] = field(default_factory=dict)


class ScoreDistillation:
    """Base class: subclasses set ``Config`` and implement :meth:`gradient`."""

    Config: ClassVar[type]
    #: named settings: {"profile": {"method": {...Config fields}, "loop": {...LoopConfig fields}}}
    profiles: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    default_profile: ClassVar[str] = "harmonised"
    family: ClassVar[str] = "score distillation"     # sms.stylizer: the families above one interface
    style_inputs: ClassVar[tuple[str, ...]] = ("prompt", "lora")
    needs_diffusion: ClassVar[bool] = True

    def __init__(self, config, models: ModelStack, prompts: Prompts):
        self.config = config
        self.models = models
        self.denoisers = models.denoisers
        self.cond = Conditioning(models, prompts)
        self.schedule = NoiseSchedule.from_scheduler(models.scheduler)
        self.grid = ddim_grid(models.scheduler, GRID_STEPS)
        self.sampler: TimestepSampler = build_sampler(config.t_sampler, **getattr(config, "t_sampler_options", {}))

    def draw_timestep(self, state: StepState, stream: str = "t",
                      sampler: TimestepSampler | None = None) -> Draw | Draws:
        sampler = sampler or self.sampler
        if isinstance(state.streams, RandomStreams):
            draw = sampler.sample(self.grid, state.step, state.num_steps, state.streams.generator(state.step, stream))
            state.streams.record_timestep(state.step, stream, draw.t)
            return draw
        draws = sampler.sample_batch(self.grid, state.step, state.num_steps,
                                     [streams.generator(state.step, stream) for streams in state.streams])
        for streams, t in zip(state.streams, draws.t):
            streams.record_timestep(state.step, stream, t)
        return draws

    def draw_noise(self, state: StepState, stream: str = "eps") -> torch.Tensor:
        if isinstance(state.streams, RandomStreams):
            return state.streams.normal(state.step, stream, state.z.shape, device=state.z.device)
        sample_shape = (1, *state.z.shape[1:])
        return torch.cat([streams.normal(state.step, stream, sample_shape) for streams in state.streams]).to(state.z.device)

    def per_sample(self, fn, *args):
        """fn of the draw(s): a float for one image, a (B, 1, 1, 1) tensor for a batch (sms.timesteps.per_sample)."""
        return per_sample(fn, *args, device=self.models.device)

    def timestep_tensor(self, t: int | tuple[int, ...]) -> torch.Tensor:
        return torch.tensor(t, device=self.models.device)

    def begin(self, streams: RandomStreams) -> None:
        """Called once per image before the first step (e.g. to reset auxiliary networks). Default: nothing."""

    def gradient(self, state: StepState) -> Gradient:
        raise NotImplementedError

    def update(self, state: StepState) -> dict[str, float]:
        """Auxiliary update after z moved (``state.z`` is the new latent). Default: nothing."""
        return {}

    def auxiliary_state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.optim.Optimizer]]:
        """What :meth:`update` trains, for a generator's checkpoint: (named parameters, named optimisers);
        loading copies into them in place. Default: nothing (a method without auxiliary networks)."""
        return {}, {}


#: which ε-network scores the target (supplement D, Figure 2): the base UNet, or the style UNet (+ LoRA)
PRIORS = ("base", "style")


def check_prior(prior: str) -> str:
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; use one of {', '.join(PRIORS)}")
    return prior


@dataclass
class PriorConfig:
    """What the prior-branch baselines (SDS, DDS, PDS) share: their timestep sampler and which network scores
    the target (``prior``; the source branch, where there is one, is always the base UNet)."""

    t_sampler: str = "ans"
    t_sampler_options: dict = field(default_factory=dict)
    prior: str = "base"

    def __post_init__(self):
        check_prior(self.prior)


def prior_network(prior: str) -> str:
    """'base' → the real network, 'style' → the style network (the target branch of SDS/DDS/PDS)."""
    return REAL if check_prior(prior) == "base" else STYLE


@dataclass(frozen=True)
class Branch:
    """One guided ε̂ to compute: ``network`` (real, style or fake) at ``z_t`` conditioned on ``emb``."""

    network: str
    z_t: torch.Tensor
    emb: torch.Tensor


def per_row(emb: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """A (1, L, D) text embedding repeated for each of z_t's B samples (a view; B = 1 leaves it as it is)."""
    return emb.expand(len(z_t), *emb.shape[1:])


def guided_scores(denoisers, branches: list[Branch], t: torch.Tensor, uncond: torch.Tensor,
                  scale: float) -> list[torch.Tensor]:
    """CFG_s(ε_c, ε_u) for each branch (sms.diffusion.cfg), all branches in as few UNet calls as the
    networks allow (``Denoisers.batched``: one call per UNet, DDS = 4 rows); s = 1 skips the uncond rows."""
    if scale == 1.0:
        return denoisers.batched([(b.network, b.z_t, per_row(b.emb, b.z_t)) for b in branches], t)
    requests = [(b.network, torch.cat([b.z_t, b.z_t]), torch.cat([per_row(b.emb, b.z_t), per_row(uncond, b.z_t)]))
                for b in branches]
    return [cfg(*out.chunk(2), scale) for out in denoisers.batched(requests, t)]


def count_nonfinite(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero non-finite entries (the release's nan_to_num) and count them, without a host sync."""
    bad = ~torch.isfinite(g)
    return torch.where(bad, torch.zeros_like(g), g), bad.sum()
