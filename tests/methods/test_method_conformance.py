"""Every registered method (SMS, baselines, future plugins) runs the shared loop on tiny models: it finishes,
stays finite, reproduces bit-identically from its seed, and reports exactly the UNet forwards it made."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sms.method import methods

METHODS = methods.names()
OTHER_PROFILES = [(name, profile) for name in METHODS for profile in sorted(methods.get(name).profiles)
                  if profile != methods.get(name).default_profile]


def test_registry_has_suite_methods():
    assert {"sms", "sds", "dds", "pds", "vsd"} <= set(METHODS)


def _check_finite_and_counted(run, iters):
    result = run.result
    assert len(result.trace.t) == iters
    assert np.isfinite(np.asarray(result.image, dtype=np.float64)).all()
    assert all(np.isfinite(result.trace.distill_grad)) and all(np.isfinite(result.trace.identity_loss))
    assert sum(result.trace.nonfinite) == 0
    assert all(n > 0 for n in result.trace.forwards)
    assert sum(result.trace.forwards) == run.unet_rows, "reported forwards ≠ rows the UNet actually saw"


@pytest.mark.parametrize("name", METHODS)
def test_default_profile_runs_finite_counted_and_reproducible(name, run_method):
    first = run_method(name)
    _check_finite_and_counted(first, 3)
    second = run_method(name)
    assert first.result.image.tobytes() == second.result.image.tobytes()
    assert dataclasses.asdict(first.result.trace) == dataclasses.asdict(second.result.trace)


@pytest.mark.parametrize("name,profile", OTHER_PROFILES)
def test_every_profile_runs_finite_and_counted(name, profile, run_method):
    _check_finite_and_counted(run_method(name, profile, iters=2), 2)


@pytest.mark.parametrize("name", METHODS)
def test_profiles_resolve_and_default_exists(name):
    from sms.config import RunConfig, resolve

    cls = methods.get(name)
    assert cls.default_profile in cls.profiles
    for profile in cls.profiles:
        resolved = resolve(RunConfig(method=name, profile=profile))
        assert resolved.method_config is not None and resolved.loop.iters > 0
