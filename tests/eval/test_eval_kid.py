"""KID: torchmetrics' unbiased polynomial MMD² on the FID backbone's features, checked against the formula."""
import numpy as np
import pytest

from eval.kid import KID


def unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """MMD²_u with k(a, b) = (aᵀb / d + 1)³, written out (Bińkowski et al. 2018, eq. 2)."""
    d = x.shape[1]
    kernel = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


class FixedFeatures(KID):
    """KID with given features instead of an Inception forward."""

    def __init__(self, generated, reference):  # noqa: D107  (no backbone: the maths only)
        self._generated, self._reference_features = generated, reference

    def generated_features(self):
        return self._generated

    def reference_features(self):
        return self._reference_features


def test_kid_is_the_unbiased_polynomial_mmd_and_sees_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 16))
    same, shifted = rng.normal(size=(30, 16)), rng.normal(0.7, 1.0, size=(30, 16))
    for generated in (same, shifted):
        kid = FixedFeatures(generated, reference)
        assert kid.value_at(np.arange(30)) == pytest.approx(unbiased_poly_mmd(reference, generated), rel=1e-9)
    close, far = (FixedFeatures(g, reference).value_at(np.arange(30)) for g in (same, shifted))
    assert far > 0 and abs(close) < 0.2 * far   # one law: ≈ 0 (unbiased, may be < 0); shifted: clearly > 0
    subset = FixedFeatures(shifted, reference).value_at(np.arange(10), np.arange(0, 40, 2))
    assert subset == pytest.approx(unbiased_poly_mmd(reference[::2], shifted[:10]), rel=1e-9)
