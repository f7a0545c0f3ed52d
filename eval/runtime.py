"""Runtime metrics read from the stylisation sidecars (no images, no weights)."""
from __future__ import annotations

import math
from typing import ClassVar, Sequence

import torch

from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from sms.results import Sample


class _SidecarField(PerImageMetric):
    """One number from each sidecar, found by a key path; null or absent gives NaN (e.g. no CUDA peak memory)."""

    direction = Direction.LOWER
    pairing = Pairing.SIDECAR
    needs = ("sidecar",)
    path: ClassVar[tuple[str, ...]]
    scale: ClassVar[float] = 1.0

    def read(self, sidecar) -> float:
        value = sidecar
        for key in self.path:
            value = value.get(key) if isinstance(value, dict) else None
        return math.nan if value is None else float(value) * self.scale

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        return torch.tensor([self.read(s.sidecar) for s in samples], dtype=torch.float64)

    def definition(self) -> str:
        scale = "" if self.scale == 1.0 else f"*{self.scale:g}"
        return f"sidecar:{'.'.join(self.path)}{scale}"


@METRICS.register("seconds_per_image")
class SecondsPerImage(_SidecarField):
    path = ("timings", "seconds_total")


@METRICS.register("seconds_per_iter")
class SecondsPerIteration(_SidecarField):
    path = ("timings", "seconds_per_iter")


@METRICS.register("peak_memory_gib")
class PeakMemory(_SidecarField):
    path = ("peak_memory_bytes",)
    scale = 1 / 2**30


@METRICS.register("unet_forwards")
class UNetForwards(_SidecarField):
    path = ("unet_forwards", "total")
