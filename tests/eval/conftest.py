"""Stand-in weights (eval.standin: random, written to files the metrics load by path) and tiny results folders."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import smooth_image

from eval.standin import write_standin_weights
from eval.weights import MetricWeights

os.environ.setdefault("HF_HUB_OFFLINE", "1")
_depth = 0


@contextlib.contextmanager
def lean_cpu():
    """One thread (tiny tensors: as fast, and immune to a busy second core) and flushed denormals (random
    backbones produce them, ~3x slower); restored afterwards so other test folders keep torch's defaults."""
    global _depth
    threads = torch.get_num_threads()
    _depth += 1
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            torch.set_num_threads(threads)
            torch.set_flush_denormal(False)


@pytest.fixture(autouse=True, scope="module")
def _lean_cpu():
    with lean_cpu():
        yield


@pytest.fixture(scope="session")
def style_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("style_watercolor")
    rng = np.random.default_rng(123)
    for i in range(5):
        smooth_image(rng).save(folder / f"style_{i}.png")
    return folder


@pytest.fixture(scope="session")
def standin_json(tmp_path_factory) -> Path:
    """weights.json of random stand-ins for every backbone (eval.standin), loaded by path like real weights."""
    return write_standin_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def weights(standin_json):
    return MetricWeights.from_json(standin_json)
