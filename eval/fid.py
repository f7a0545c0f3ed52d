"""FID (stylised set vs style set), the art-Inception FID and ArtFID = (1 + LPIPS)(1 + FID_art).

Fréchet distance as pytorch-fid / art-fid compute it (scipy.linalg.sqrtm of Σ1Σ2). With fewer images
than feature dimensions the same quantity is computed exactly from the centred features
(tr√(Σ1Σ2) = ‖A Bᵀ‖_* / √((n1−1)(n2−1))), which avoids a 2048² sqrtm on a singular product and makes
the interval's half-samples (of both sets) cheap. FID∞ (Chong & Forsyth, art-fid's ``art_fid_inf``) is
refused below 5,000 stylised images.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
from scipy import linalg
from torchmetrics.utilities import dim_zero_cat

from eval.inception import load_inception_features
from eval.perceptual import LPIPSMetric
from eval.registry import METRICS, Direction, Pairing, SetMetric
from eval.weights import MetricUnavailable, MetricWeights, require_file, resolve_art_inception
from sms.results import Sample

FID_INFINITY_MIN = 5000


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2√(Σ1Σ2)), with art-fid's ε-offset retry when the product is singular."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (rows = samples)."""
    f1, f2 = np.asarray(features1, dtype=np.float64), np.asarray(features2, dtype=np.float64)
    (n1, dims), n2 = f1.shape, f2.shape[0]
    if min(n1, n2) < 2:
        raise MetricUnavailable(f"Fréchet distance needs at least 2 images per set, got {n1} and {n2}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    if min(n1, n2) > dims:
        return frechet_distance(mu1, np.cov(f1, rowvar=False), mu2, np.cov(f2, rowvar=False))
    a, b = f1 - mu1, f2 - mu2
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() / (n1 - 1) + (b * b).sum() / (n2 - 1) - 2 * tr_covmean)


def fid_infinity(features1: np.ndarray, features2: np.ndarray, rng: np.random.Generator, points: int = 15) -> float:
    """FID extrapolated to infinitely many images: linear fit of FID_n against 1/n, n from 5,000 to N."""
    n = len(features1)
    if n < FID_INFINITY_MIN:
        raise MetricUnavailable(f"FID-infinity needs >= {FID_INFINITY_MIN} stylised images, got {n}; use plain FID")
    sizes = np.linspace(FID_INFINITY_MIN, n, points).astype(int)
    values = []
    for size in sizes:
        ref = features2[rng.permutation(len(features2))[:size]]
        values.append(frechet_distance_features(features1[rng.permutation(n)[:size]], ref))
    _slope, intercept = np.polyfit(1.0 / sizes, values, 1)
    return float(intercept)


class _InceptionFID(SetMetric):
    direction = Direction.LOWER
    pairing = Pairing.STYLE_SET
    needs: ClassVar[tuple[str, ...]] = ("style_refs",)
    label: ClassVar[str] = "inception"

    def __init__(
        self,
        weights: MetricWeights | None = None,
        *,
        device: str = "cpu",
        resize: int | None = None,
        infinity: bool = False,
        seed: int = 0,
    ):
        super().__init__(weights, device=device)
        path = self.weights_path()
        self.extractor = load_inception_features(path, resize=resize, device=self.target_device)
        self.weights_hash = self.weights.weights_id(path)
        self.infinity = infinity
        self.seed = seed
        self.add_state("features", default=[], dist_reduce_fx="cat")
        self._reference: dict[tuple, np.ndarray] = {}
        self.refs: tuple = ()

    def weights_path(self):
        return require_file(self.weights.inception, "FID Inception weights", "inception")

    def missing(self, samples: Sequence[Sample]) -> str | None:
        if self.infinity and len(samples) < FID_INFINITY_MIN:
            return f"FID-infinity needs >= {FID_INFINITY_MIN} stylised images, got {len(samples)}; use plain FID"
        return super().missing(samples)

    def update(self, samples: Sequence[Sample]) -> None:
        refs = {s.style_refs for s in samples} | ({self.refs} if self.refs else set())
        if len(refs) != 1:
            raise ValueError("one FID group must share one style reference set")
        self.refs = refs.pop()
        self.features.append(self.extractor([s.output for s in samples]))

    def reset(self) -> None:
        super().reset()
        self.refs = ()

    def reference_features(self) -> np.ndarray:
        if self.refs not in self._reference:
            self._reference[self.refs] = self.extractor(list(self.refs)).numpy()
        return self._reference[self.refs]

    def generated_features(self) -> np.ndarray:
        return dim_zero_cat(self.features).numpy()

    def n_items(self) -> int:
        return sum(len(f) for f in self.features)

    def n_reference(self) -> int:
        return len(self.refs)

    def set_sizes(self) -> tuple[int, int]:
        return self.n_items(), self.n_reference()

    def fid_at(self, indices: np.ndarray, ref_indices: np.ndarray | None = None) -> float:
        generated, reference = self.generated_features()[indices], self.reference_features()
        if ref_indices is not None:
            reference = reference[ref_indices]
        if self.infinity:
            return fid_infinity(generated, reference, np.random.default_rng(self.seed))
        return frechet_distance_features(generated, reference)

    def value_at(self, indices: np.ndarray, ref_indices: np.ndarray | None = None) -> float:
        return self.fid_at(indices, ref_indices)

    def definition(self) -> str:
        kind = "fid-inf" if self.infinity else "fid"
        return f"{kind}-{self.extractor.flavour}-{self.label}@{self.weights_hash}-pool2048/{self.extractor.rule}"

    def sizes(self) -> str:
        return f"{self.n_items()}:ref={len(self.refs)}"


@METRICS.register("fid")
class FID(_InceptionFID):
    """Plain FID with the Inception checkpoint given as ``inception`` (pytorch-fid's is the standard one)."""


@METRICS.register("fid_art")
class ArtInceptionFID(_InceptionFID):
    """FID with art-fid's art-tuned Inception: the FID term inside ArtFID."""

    label = "art_inception"

    def weights_path(self):
        return resolve_art_inception(self.weights)


@METRICS.register("artfid")
class ArtFID(ArtInceptionFID):
    """(1 + mean LPIPS(stylised, content)) · (1 + FID_art(stylised set, style set)), as art-fid 0.0.2;
    ``resize=512``: StyleID's copy, torchvision ``Resize(512)`` before both terms."""

    pairing = Pairing.CONTENT_AND_STYLE_SET
    needs = ("content", "style_refs")

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu", **options):
        super().__init__(weights, device=device, **options)
        self.content = LPIPSMetric(self.weights, device=device, short_side=options.get("resize"))

    def update(self, samples: Sequence[Sample]) -> None:
        super().update(samples)
        self.content.update(samples)

    def reset(self) -> None:
        super().reset()
        self.content.reset()

    def value_at(self, indices: np.ndarray, ref_indices: np.ndarray | None = None) -> float:
        lpips_mean = float(self.content.compute().numpy()[indices].mean())
        return (1 + lpips_mean) * (1 + self.fid_at(indices, ref_indices))

    def definition(self) -> str:
        return f"{super().definition()}+{self.content.definition()}"
