"""The metric registry and the two metric shapes (torchmetrics ``Metric``: update/compute, streaming).

* :class:`PerImageMetric` — one value per stylised image; ``compute()`` returns them in update order and
  the runner aggregates their mean with a bootstrap CI.
* :class:`SetMetric` — one value per (method, style) group, e.g. FID of the stylised set against the
  style set; ``value_at`` evaluates it on subsets of each of its sets, from which the runner draws the
  half-sampling interval of ``eval.bootstrap.statistic_ci``.

Every metric states its name (the registry key), ``direction``, ``pairing`` and ``definition_id()``:
``name/backbone@weights-sha256[:12]/resize rule/N=...``.
"""
from __future__ import annotations

import importlib
from enum import Enum
from typing import ClassVar, Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from eval.weights import MetricUnavailable, MetricWeights
from sms.registry import Registry
from sms.results import Sample

METRICS: Registry = Registry("metric")
METRIC_MODULES = (
    "eval.perceptual",
    "eval.pixel",
    "eval.clip_metrics",
    "eval.pickscore",
    "eval.fid",
    "eval.kid",
    "eval.runtime",
    "eval.spectral",
)


class Direction(str, Enum):
    HIGHER = "higher"
    LOWER = "lower"
    NONE = "none"


class Pairing(str, Enum):
    CONTENT = "stylised<->content"
    PROMPT = "stylised<->prompt"
    STYLE_REFS = "stylised<->style set"
    STYLE_SET = "stylised set<->style set"
    CONTENT_AND_STYLE_SET = "stylised<->content + stylised set<->style set"
    OUTPUT = "stylised"
    SIDECAR = "sidecar"


NEEDS_REASON = {
    "content": "no content image in the manifest",
    "prompt": "no prompt in the manifest",
    "style_refs": "no style reference set given for this style (--style-set NAME=DIR)",
    "sidecar": "no sidecar JSON",
}


def load_all() -> Registry:
    """Import every metric module so the registry is complete."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return METRICS


class EvalMetric(Metric):
    """Common part: weights config, device, pairing checks and the definition id."""

    direction: ClassVar[Direction]
    pairing: ClassVar[Pairing]
    needs: ClassVar[tuple[str, ...]] = ()
    per_image: ClassVar[bool] = True
    registry_name: ClassVar[str]
    is_differentiable = False
    full_state_update = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        direction = getattr(cls, "direction", None)
        if direction is not None:
            cls.higher_is_better = {Direction.HIGHER: True, Direction.LOWER: False}.get(direction)

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu") -> None:
        super().__init__()
        self.weights = weights if weights is not None else MetricWeights()
        self.target_device = torch.device(device)

    def missing(self, samples: Sequence[Sample]) -> str | None:
        """Why this metric cannot score these samples, or None."""
        for need in self.needs:
            lacking = sum(1 for s in samples if not getattr(s, need))
            if lacking:
                return f"{lacking} of {len(samples)} samples: {NEEDS_REASON[need]}"
        return None

    def definition(self) -> str:
        """Backbone@hash and resize rule; subclasses override."""
        return "none"

    def sizes(self) -> str:
        raise NotImplementedError

    def definition_id(self) -> str:
        return f"{self.registry_name}/{self.definition()}/N={self.sizes()}"


class PerImageMetric(EvalMetric):
    """One value per stylised image; subclasses implement ``score(samples) -> tensor[len(samples)]``."""

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu") -> None:
        super().__init__(weights, device=device)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        raise NotImplementedError

    def update(self, samples: Sequence[Sample]) -> None:
        values = torch.as_tensor(self.score(samples), dtype=torch.float64).reshape(-1).cpu()
        if values.numel() != len(samples):
            raise RuntimeError(f"{self.registry_name} returned {values.numel()} values for {len(samples)} samples")
        self.values.append(values)

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.values) if self.values else torch.empty(0, dtype=torch.float64)

    def sizes(self) -> str:
        return str(sum(v.numel() for v in self.values))


class SetMetric(EvalMetric):
    """One value per group; ``value_at(indices, ref_indices)`` evaluates it on subsets of the stylised images
    and of the reference set (None: all of it)."""

    per_image = False

    def value_at(self, indices: np.ndarray, ref_indices: np.ndarray | None = None) -> float:
        raise NotImplementedError

    def n_items(self) -> int:
        raise NotImplementedError

    def set_sizes(self) -> tuple[int, ...]:
        """Sizes of the sets ``value_at`` takes indices into, in its argument order."""
        return (self.n_items(),)

    def compute(self) -> torch.Tensor:
        return torch.tensor(self.value_at(*(np.arange(n) for n in self.set_sizes())), dtype=torch.float64)


def build(name: str, weights: MetricWeights | None = None, *, device: str = "cpu", **options) -> EvalMetric:
    """Instantiate a registered metric; raises MetricUnavailable with the skip reason."""
    cls = load_all().get(name)
    return cls(weights, device=device, **options)


__all__ = [
    "METRICS",
    "Direction",
    "Pairing",
    "EvalMetric",
    "PerImageMetric",
    "SetMetric",
    "MetricUnavailable",
    "MetricWeights",
    "build",
    "load_all",
]
