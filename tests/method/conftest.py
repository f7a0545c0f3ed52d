"""The analytic Gaussian tests: tensors are tiny, so intra-op threads only add overhead (and contention on a
shared 2-core machine)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
