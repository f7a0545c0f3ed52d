"""Intervals from an explicit seeded generator: percentile bootstrap (scipy.stats.bootstrap) for means of
per-image values, half-sampling without replacement for set statistics such as FID."""
from __future__ import annotations

import inspect
import zlib
from typing import Callable, Sequence

import numpy as np
from scipy import stats

# scipy >= 1.15 takes rng=, older versions random_state=
_RNG_KEYWORD = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def group_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator for one (metric, group): independent of the order in which groups are evaluated."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def mean_ci(values: np.ndarray, n_resamples: int, rng: np.random.Generator, level: float = 0.95):
    """(mean, ci_low, ci_high, n) over the finite values; CI is NaN with fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(values.mean())
    if len(values) < 2 or n_resamples <= 0:
        return mean, np.nan, np.nan, len(values)
    if np.ptp(values) == 0:
        return mean, mean, mean, len(values)
    result = stats.bootstrap(
        (values,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile", **{_RNG_KEYWORD: rng}
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high), len(values)


def half_samples(size: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """n_resamples rows of ⌈size/2⌉ distinct indices of range(size)."""
    return rng.permuted(np.tile(np.arange(size), (n_resamples, 1)), axis=1)[:, : (size + 1) // 2]


def statistic_ci(
    statistic: Callable[..., float],
    sizes: int | Sequence[int],
    n_resamples: int,
    rng: np.random.Generator,
    level: float = 0.95,
):
    """Interval for E[statistic] at the set sizes used, for a set statistic (FID, ArtFID) of one or more sets.

    ``statistic(*indices)`` takes one index array per set (for FID: stylised, reference). The standard error
    comes from half-sampling, the delete-d jackknife with d = ⌊n/2⌋ (subsampling without replacement; Shao &
    Wu 1989, valid for non-smooth statistics): each resample keeps ⌈n/2⌉ distinct items of every set, and
    SE² = Var(resample values) · ⌈n/2⌉/⌊n/2⌋ (the larger over the sets; 1 for even sizes). The interval is
    estimate ± z·SE, the estimate on all items.

    Only the spread of the resamples is used, not their centre (FID at n/2 is biased further up), so the
    interval is for E[FID(n, m)], FID's expectation at the group's n stylised and m reference images over
    draws of both sets; not the population FID, which FID_n overestimates by O(dims/n). On Gaussian features
    (tests/eval/test_eval_intervals.py), nominal 95 % covers E[FID(n, m)] in 95–99 % of 500–1000 trials for
    every n, m from 3 to 200 at dims 16 and 128 (95.1 % at n = m = 3; 100 % when the laws are equal):
    half-sampling overestimates the second-order terms that dominate FID's variance at small n, so it errs
    wide. NaN below 3 items in a set.
    """
    sizes = tuple(np.atleast_1d(sizes).tolist())
    if min(sizes) < 3 or n_resamples <= 1:
        return np.nan, np.nan
    estimate = statistic(*(np.arange(n) for n in sizes))
    draws = [half_samples(n, n_resamples, rng) for n in sizes]
    values = np.array([statistic(*(d[k] for d in draws)) for k in range(n_resamples)])
    scale = max((n + 1) // 2 / (n // 2) for n in sizes)
    half_width = stats.norm.ppf((1 + level) / 2) * np.sqrt(values.var(ddof=1) * scale)
    return float(estimate - half_width), float(estimate + half_width)
