"""SSIM and PSNR (torchmetrics functional, float64) between stylised and content image; no weights."""
from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from eval.images import pair_rule, paired_tensors
from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from eval.weights import MetricWeights
from sms.results import Sample


class _PairedPixelMetric(PerImageMetric):
    pairing = Pairing.CONTENT
    needs = ("content",)

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu", size: int | None = None):
        super().__init__(weights, device=device)
        self.size = size

    def pair_value(self, output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        values = []
        for sample in samples:
            output, content = paired_tensors(sample.output, sample.content, self.size)
            values.append(self.pair_value(output.double(), content.double()).reshape(1))
        return torch.cat(values)


@METRICS.register("ssim")
class SSIM(_PairedPixelMetric):
    """Gaussian SSIM (11×11, σ = 1.5, K = 0.01/0.03, data range 1), RGB channels averaged.

    The map is torchmetrics'; its mean is taken over the valid region (5-px border dropped), as
    scikit-image and Wang et al. do. torchmetrics 1.9's own scalar also averages the reflect-padded
    border, which differs by ~0.005 on 80² images.
    """

    direction = Direction.HIGHER
    border = 5

    def pair_value(self, output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        _, ssim_map = structural_similarity_index_measure(
            output, content, data_range=1.0, reduction="none", return_full_image=True
        )
        b = self.border
        return ssim_map[..., b:-b, b:-b].mean()

    def definition(self) -> str:
        return f"torchmetrics-ssim-gauss11-s1.5-rgb-valid/{pair_rule(self.size)}"


@METRICS.register("psnr")
class PSNR(_PairedPixelMetric):
    """PSNR in dB over all RGB pixels, data range 1 (8-bit images scaled by 1/255)."""

    direction = Direction.HIGHER

    def pair_value(self, output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return peak_signal_noise_ratio(output, content, data_range=1.0, reduction="none", dim=(1, 2, 3))

    def definition(self) -> str:
        return f"torchmetrics-psnr-rgb/{pair_rule(self.size)}"
