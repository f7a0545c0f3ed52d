"""Radially averaged power spectral density (RAPSD), pysteps convention (sms-spec.md §11).

P = |fftshift(fft2(x))|² / (M·N), averaged over rings of integer radius r = round(√(x²+y²)) for
r < L/2 with L = max(M, N); frequencies are ``fftfreq(L)[r]`` in cycles/pixel. Every preprocessing
step the paper leaves unstated (grey conversion, mean removal, working size, normalisation) is an
explicit option of :func:`image_spectrum`.

Images are cropped to their largest centred square before anything else (:func:`centre_square`). The ring
radius counts FFT bins, so on an M×N field with M ≠ N one bin is 1/M cycles/pixel on one axis and 1/N on the
other: neither pysteps' native rings nor a stretch to a square keep a frequency on one ring. A crop keeps
every frequency where it was (a resize then multiplies all of them alike, by side/size) at the cost of the
margins of the long side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image

from sms.images import decode_rgb, to_rgb

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
    """An HxW or HxWx3 float64 array in [0, 1] from a PIL image, a path, or a uint8/float array.

    Paths and PIL images go through the suite's decoder (:mod:`sms.images`: EXIF orientation, alpha on
    white, 16-bit rescaled), so a spectrum sees the same pixels as every other metric.
    """
    if isinstance(image, (str, Path)):
        image = decode_rgb(image)
    if isinstance(image, Image.Image):
        image = np.asarray(to_rgb(image))
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


def centre_square(array: np.ndarray) -> np.ndarray:
    """The largest centred square of an HxW(xC) array (the long side loses ⌊d/2⌋ first, ⌈d/2⌉ last)."""
    height, width = array.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return array[top:top + side, left:left + side]


def preprocessing_rule(size: int | None) -> str:
    """The geometric rule of :func:`image_spectrum` as it appears in definition ids."""
    return "centre-square-native" if size is None else f"centre-square-{size}-bicubic"


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
    per-channel spectra. remove_mean: subtract each channel's mean (removes the DC ring). size: the
    largest centred square is resized (bicubic) to size×size; None keeps that square's own size
    (:func:`preprocessing_rule` names the rule). normalize: spectrum sums to 1.
    """
    array = centre_square(load_image_array(image))
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
