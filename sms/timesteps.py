"""Timestep samplers over the 500-step DDIM grid (spec §3), each drawing from a passed generator."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sms.registry import Registry

GRID_STEPS = 500
samplers: Registry = Registry("timestep sampler")


@dataclass(frozen=True)
class Draw:
    t: int
    t_prev: int


@dataclass(frozen=True)
class Draws:
    """One :class:`Draw` per sample of a batch (issue 14: one t per sample); ``t``/``t_prev`` are tuples."""

    draws: tuple[Draw, ...]

    @property
    def t(self) -> tuple[int, ...]:
        return tuple(draw.t for draw in self.draws)

    @property
    def t_prev(self) -> tuple[int, ...]:
        return tuple(draw.t_prev for draw in self.draws)


def per_sample(fn: Callable, *args, device=None):
    """fn(*args) for one draw's ints (a Python float, exactly as the per-image path computes it); for a
    batch's tuples, fn per sample as a float32 (B, 1, 1, 1) tensor that broadcasts over the latents
    (a tuple of such tensors where fn returns a tuple)."""
    if not isinstance(args[0], tuple):
        return fn(*args)
    values = [fn(*sample) for sample in zip(*args)]
    if isinstance(values[0], tuple):
        return tuple(_column(column, device) for column in zip(*values))
    return _column(values, device)


def _column(values, device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1, 1, 1)


def min_index(min_ratio: float = 0.02, grid_steps: int = GRID_STEPS) -> int:
    """⌊500·0.02⌋ = 10 ⇒ t ≥ 21."""
    return int(grid_steps * min_ratio)


def ans_max_index(step: int, num_steps: int, *, max_ratio: float = 0.5, min_ratio: float = 0.02,
                  grid_steps: int = GRID_STEPS) -> int:
    """Exclusive upper grid index of Adaptive Narrowing Sampling: max(⌊500·0.5·(1 − i/N)⌋, min_idx + 1).

    Evaluated in float64 exactly like the release, so t_upper(400 of 500) = 97 (⌊49.999…⌋ = 49)."""
    return max(math.floor(grid_steps * max_ratio * (1 - step / num_steps)), min_index(min_ratio, grid_steps) + 1)


def t_upper(grid: torch.Tensor, step: int, num_steps: int, **ratios) -> int:
    """Largest t ANS can draw at iteration ``step``: 499 → 21 over the run."""
    return int(grid[ans_max_index(step, num_steps, **ratios) - 1])


def _draw(grid: torch.Tensor, low: int, high: int, generator: torch.Generator) -> Draw:
    index = int(torch.randint(low, high, (1,), generator=generator))
    return Draw(int(grid[index]), int(grid[index - 1]))


def row_timesteps(t: torch.Tensor, rows: int) -> torch.Tensor:
    """One t per UNet row: a batch's rows come in whole blocks of its B samples (cond block, uncond block)."""
    return t if t.ndim == 0 else t.repeat(rows // t.numel())


class TimestepSampler:
    def sample(self, grid: torch.Tensor, step: int, num_steps: int, generator: torch.Generator) -> Draw:
        raise NotImplementedError

    def sample_batch(self, grid: torch.Tensor, step: int, num_steps: int,
                     generators: Sequence[torch.Generator]) -> Draws:
        """One draw per sample, each from its own generator: sample i gets what it would get alone."""
        return Draws(tuple(self.sample(grid, step, num_steps, generator) for generator in generators))


@samplers.register("ans")
@dataclass(frozen=True)
class AdaptiveNarrowing(TimestepSampler):
    """t ∈ [21, t_upper(i)], idx ~ U{min_idx, …, max_idx(i) − 1} (SMS, spec §3)."""

    max_ratio: float = 0.5
    min_ratio: float = 0.02

    def _max_index(self, grid: torch.Tensor, step: int, num_steps: int) -> int:
        return ans_max_index(step, num_steps, max_ratio=self.max_ratio, min_ratio=self.min_ratio,
                             grid_steps=len(grid))

    def sample(self, grid, step, num_steps, generator):
        return _draw(grid, min_index(self.min_ratio, len(grid)), self._max_index(grid, step, num_steps), generator)


@samplers.register("uniform")
@dataclass(frozen=True)
class UniformGrid(TimestepSampler):
    """idx ~ U{⌊500·min⌋, …, ⌊500·max⌋ − 1}: t ∈ [21, 979] for [0.02, 0.98] (the 'random t' ablation)."""

    min_ratio: float = 0.02
    max_ratio: float = 0.98

    def sample(self, grid, step, num_steps, generator):
        return _draw(grid, int(len(grid) * self.min_ratio), int(len(grid) * self.max_ratio), generator)


@samplers.register("linear")
@dataclass(frozen=True)
class LinearAnnealing(AdaptiveNarrowing):
    """Deterministic t on ANS's upper envelope, t_upper(i) (the 'linear annealing' ablation; [derived])."""

    def sample(self, grid, step, num_steps, generator):
        index = self._max_index(grid, step, num_steps) - 1
        return Draw(int(grid[index]), int(grid[index - 1]))


@samplers.register("range")
@dataclass(frozen=True)
class UniformRange(TimestepSampler):
    """Integer t ~ U{low, …, high − 1} on the training timesteps (DDS: [50, 949); threestudio: [20, 980])."""

    low: int = 20
    high: int = 981

    def sample(self, grid, step, num_steps, generator):
        t = int(torch.randint(self.low, self.high, (1,), generator=generator))
        return Draw(t, max(t - 1, 0))


def build_sampler(name: str, **options) -> TimestepSampler:
    return samplers.get(name)(**options)
