"""Spectral metrics from eval.rapsd: the high-frequency power ratio of each stylised image, and its gap
to the style reference set's mean ratio."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from eval.rapsd import high_frequency_ratio, image_spectrum, preprocessing_rule
from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from eval.weights import MetricWeights
from sms.results import Sample


@METRICS.register("hf_ratio")
class HighFrequencyRatio(PerImageMetric):
    """Share of RAPSD power at ≥ cutoff cycles/pixel (grey luma, mean removed, largest centred square
    resized bicubic to size², so cycles/pixel are those of the size² grid)."""

    direction = Direction.NONE
    pairing = Pairing.OUTPUT

    def __init__(
        self, weights: MetricWeights | None = None, *, device: str = "cpu", cutoff: float = 0.25, size: int | None = 256
    ):
        super().__init__(weights, device=device)
        self.cutoff = cutoff
        self.size = size

    def ratio(self, path) -> float:
        power, freq = image_spectrum(path, grey=True, remove_mean=True, size=self.size, normalize=True)
        return high_frequency_ratio(power, freq, cutoff=self.cutoff)

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        return torch.tensor([self.ratio(s.output) for s in samples], dtype=torch.float64)

    def definition(self) -> str:
        return f"rapsd-pysteps-luma601-meanremoved-{preprocessing_rule(self.size)}/hf>={self.cutoff:g}cpp"


@METRICS.register("hf_ratio_gap")
class HighFrequencyRatioGap(HighFrequencyRatio):
    """|hf_ratio(stylised) − mean hf_ratio(style reference images)|."""

    direction = Direction.LOWER
    pairing = Pairing.STYLE_REFS
    needs = ("style_refs",)

    def __init__(self, weights: MetricWeights | None = None, **options):
        super().__init__(weights, **options)
        self._reference: dict[tuple, float] = {}
        self.n_refs = 0

    def reference_ratio(self, refs: tuple) -> float:
        if refs not in self._reference:
            self._reference[refs] = float(np.mean([self.ratio(p) for p in refs]))
        self.n_refs = len(refs)
        return self._reference[refs]

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        return torch.tensor(
            [abs(self.ratio(s.output) - self.reference_ratio(s.style_refs)) for s in samples], dtype=torch.float64
        )

    def definition(self) -> str:
        return f"{super().definition()}/abs-gap-to-style-set-mean"

    def sizes(self) -> str:
        return f"{super().sizes()}:ref={self.n_refs}"
