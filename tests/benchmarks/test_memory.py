"""The CPU rows' peak memory sees an allocation that is gone again by the end of the block."""
import sys
import time

import pytest
import torch

from benchmarks.memory import PeakResident, resident_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_peak_resident_catches_a_transient_allocation():
    before = resident_bytes()
    with PeakResident(interval_s=0.001) as peak:
        block = torch.ones(64, 2**20)  # 256 MiB, touched
        time.sleep(0.05)
        del block
    after = resident_bytes()
    assert peak.bytes - before > 200 * 2**20
    assert peak.bytes - after > 200 * 2**20  # freed by the end: only the sampler saw it
