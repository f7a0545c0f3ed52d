"""Percentile bootstrap confidence intervals (scipy.stats.bootstrap) from an explicit seeded generator."""
from __future__ import annotations

import inspect
import zlib
from typing import Callable

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


def statistic_ci(
    statistic: Callable[[np.ndarray], float], n_items: int, n_resamples: int, rng: np.random.Generator, level: float = 0.95
):
    """CI of a set statistic (e.g. FID) by resampling item indices with replacement."""
    if n_items < 2 or n_resamples <= 0:
        return np.nan, np.nan
    result = stats.bootstrap(
        (np.arange(n_items),),
        lambda idx: statistic(np.asarray(idx, dtype=np.int64)),
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        vectorized=False,
        **{_RNG_KEYWORD: rng},
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
