"""Progressive Spectrum Regularization (spec §6): orthonormal DCT-II on clean latents, diagonal low-pass."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft
import torch

PSR_T_DENOMINATOR = 500  # the release divides the current t by 500 (the ANS grid size)


@lru_cache(maxsize=32)
def _dct_matrix(n: int) -> torch.Tensor:
    """D with D @ x = scipy's orthonormal DCT-II of x along the first axis (D is orthogonal)."""
    return torch.from_numpy(scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0))


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dims: D_h X D_wᵀ (differentiable)."""
    d_h = _dct_matrix(x.shape[-2]).to(x.device, x.dtype)
    d_w = _dct_matrix(x.shape[-1]).to(x.device, x.dtype)
    return d_h @ x @ d_w.T


def idct2(coefficients: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2` (the transpose, as D is orthogonal)."""
    d_h = _dct_matrix(coefficients.shape[-2]).to(coefficients.device, coefficients.dtype)
    d_w = _dct_matrix(coefficients.shape[-1]).to(coefficients.device, coefficients.dtype)
    return d_h.T @ coefficients @ d_w


def progressive_threshold(t: int, h: int, w: int) -> int:
    """k = ⌊(t/500)·(h + w − 2)⌋ with the true latent h and w (the release used w for both)."""
    return math.floor(t / PSR_T_DENOMINATOR * (h + w - 2))


def release_threshold(t: int, h: int, w: int) -> int:
    """The release's k = ⌊(t/500)·(2w − 2)⌋ (width for both sides): smaller than the true-sides k on portrait
    latents; on landscape ones it can exceed h + w − 2, where the release's assert stops the run (ValueError)."""
    k = progressive_threshold(t, w, w)
    if k > h + w - 2:
        raise ValueError(f"PSR threshold {k} > h + w − 2 = {h + w - 2} on a {h}×{w} latent at t = {t}: the release's "
                         f"low_pass assert fails here (landscape input); use sides='hw'")
    return k


def fixed_threshold(h: int, w: int, ratio: float = 0.3) -> int:
    """Supplement variant: k = ⌊0.3·(h + w − 2)⌋, independent of t."""
    return math.floor(ratio * (h + w - 2))


@lru_cache(maxsize=256)
def low_pass_mask(h: int, w: int, k: int) -> torch.Tensor:
    """M[u, v] = 1 where u + v ≤ k."""
    u = torch.arange(h).view(-1, 1)
    v = torch.arange(w).view(1, -1)
    return (u + v <= k).float()


def spectrum_loss(z: torch.Tensor, z_src: torch.Tensor, k: int, norm: str = "l1") -> torch.Tensor:
    """mean|M⊙(DCT z − DCT z_src)| (L1, the release) or the mean square (L2, the paper's formula)."""
    mask = low_pass_mask(z.shape[-2], z.shape[-1], k).to(z.device, z.dtype)
    difference = mask * (dct2(z) - dct2(z_src))
    if norm == "l1":
        return difference.abs().mean()
    if norm == "l2":
        return difference.square().mean()
    raise ValueError(f"unknown PSR norm {norm!r}; use 'l1' or 'l2'")
