"""Radially averaged power spectral density (RAPSD), pysteps convention (sms-spec.md §11).

P = |fftshift(fft2(x))|² / (M·N), averaged over rings of integer radius r = round(√(x²+y²)) for
r < L/2 with L = max(M, N); frequencies are ``fftfreq(L)[r]`` in cycles/pixel. Every preprocessing
step the paper leaves unstated (grey conversion, mean removal, square resize, normalisation) is an
explicit option of :func:`image_spectrum`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image

ImageLike = Union[Image.Image, str, Path, np.ndarray]

LUMA_601 = np.array([0.299, 0.587, 0.114])


def rapsd(field: np.ndarray, *, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean power per ring, ring frequency in cycles/pixel) of a 2-D field."""
    field = np.asarray(field, dtype=np.float64)
    if field.ndim != 2:
        raise ValueError(f"rapsd needs a 2-D field, got shape {field.shape}")
    if not np.isfinite(field).all():
        raise ValueError("rapsd input contains NaN or inf")
    m, n = field.shape
    size = max(m, n)
    yc, xc = np.ogrid[-(m // 2): m - m // 2, -(n // 2): n - n // 2]
    radius = np.round(np.sqrt(xc * xc + yc * yc)).astype(np.int64)
    n_rings = (size + 1) // 2  # rings r < L/2

    power = np.abs(np.fft.fftshift(np.fft.fft2(field))) ** 2 / field.size
    inside = radius < n_rings
    sums = np.bincount(radius[inside], weights=power[inside], minlength=n_rings)
    counts = np.bincount(radius[inside], minlength=n_rings)
    result = sums / counts
    if normalize:
        result = result / result.sum()
    freq = np.fft.fftfreq(size)[:n_rings]
    return result, freq


def load_image_array(image: ImageLike) -> np.ndarray:
    """An HxW or HxWx3 float64 array in [0, 1] from a PIL image, a path, or a uint8/float array."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        image = np.asarray(image)
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float64) / 255.0
    else:
        array = array.astype(np.float64)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {array.shape}")
    return array


def _resize_square(channel: np.ndarray, size: int) -> np.ndarray:
    resized = Image.fromarray(channel.astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
    return np.asarray(resized, dtype=np.float64)


def image_spectrum(
    image: ImageLike,
    *,
    grey: bool = True,
    remove_mean: bool = True,
    size: int | None = 256,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """RAPSD of one image with explicit preprocessing.

    grey: ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B); without it, a colour image gives the mean of its
    per-channel spectra. remove_mean: subtract each channel's mean (removes the DC ring). size: square
    bicubic resize to size×size (None keeps the image's own shape). normalize: spectrum sums to 1.
    """
    array = load_image_array(image)
    if array.ndim == 3 and grey:
        array = array @ LUMA_601
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[-1])]
    spectra = []
    freq = None
    for channel in channels:
        if size is not None:
            channel = _resize_square(channel, size)
        if remove_mean:
            channel = channel - channel.mean()
        power, freq = rapsd(channel)
        spectra.append(power)
    power = np.mean(spectra, axis=0)
    if normalize:
        total = power.sum()
        power = power / total if total > 0 else power
    return power, freq


@dataclass
class DomainSpectrum:
    """Per-image spectra of one domain: their mean and a quantile band across images."""

    freq: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int


def domain_spectrum(
    paths: Iterable[ImageLike], *, band: tuple[float, float] = (0.1, 0.9), **image_opts
) -> DomainSpectrum:
    """Average the per-image spectra of a domain; low/high are the ``band`` quantiles across images."""
    spectra = []
    freq = None
    for path in paths:
        power, this_freq = image_spectrum(path, **image_opts)
        if freq is not None and len(this_freq) != len(freq):
            raise ValueError("images give spectra of different lengths: pass size=... to resize them")
        freq = this_freq
        spectra.append(power)
    if not spectra:
        raise ValueError("domain_spectrum needs at least one image")
    stacked = np.stack(spectra)
    low, high = np.quantile(stacked, band, axis=0)
    return DomainSpectrum(freq=freq, mean=stacked.mean(axis=0), low=low, high=high, n=len(spectra))


def high_frequency_ratio(power: np.ndarray, freq: np.ndarray, *, cutoff: float = 0.25) -> float:
    """Share of the spectrum's power at frequencies ≥ cutoff (cycles/pixel)."""
    power = np.asarray(power, dtype=np.float64)
    total = power.sum()
    if total <= 0:
        raise ValueError("spectrum has no power")
    return float(power[np.asarray(freq) >= cutoff].sum() / total)
