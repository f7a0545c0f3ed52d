"""Peak resident memory of this process while a block runs: the CPU rows' 'peak GB'.

CUDA rows report ``torch.cuda.max_memory_allocated`` (tensors only). A CPU has no such counter, so a
thread samples the resident set (``/proc/self/statm``) every few milliseconds; it counts everything the
process holds (weights, allocator caches, Python), so compare CPU rows with each other, not with GPU rows.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None  # not Linux


class PeakResident:
    """``with PeakResident() as peak: ...`` then ``peak.bytes`` (None where /proc is unavailable)."""

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.bytes: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            now = resident_bytes()
            if now is not None:
                self.bytes = max(self.bytes or 0, now)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> PeakResident:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        now = resident_bytes()  # the last state, in case the block was shorter than one interval
        if now is not None:
            self.bytes = max(self.bytes or 0, now)
