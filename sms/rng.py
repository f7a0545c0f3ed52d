"""Common random numbers: every draw comes from a generator seeded by (seed, image id, step, stream).

Two methods given the same seed therefore see the same t and ε at every step, whatever else they draw.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

VAE_STEP = -1  # the step index of draws made once per image (VAE posterior sample, fake-LoRA init)


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


class RandomStreams:
    def __init__(self, seed: int, image_id: str, *, record: bool = False):
        self.seed = int(seed)
        self.image_id = image_id
        self.log: list[tuple[int, str, float]] | None = [] if record else None

    def generator(self, step: int, stream: str) -> torch.Generator:
        entropy = [self.seed, _key(self.image_id), step + 1, _key(stream)]
        state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
        return torch.Generator("cpu").manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)

    def normal(self, step: int, stream: str, shape, device=None) -> torch.Tensor:
        """Standard normal noise, drawn on the CPU so every device sees the same numbers."""
        sample = torch.randn(tuple(shape), generator=self.generator(step, stream), dtype=torch.float32)
        self._record(step, stream, float(sample.double().sum()))
        return sample.to(device) if device is not None else sample

    def _record(self, step: int, stream: str, value: float) -> None:
        if self.log is not None:
            self.log.append((step, stream, value))

    def record_timestep(self, step: int, stream: str, t: int) -> None:
        self._record(step, stream, float(t))
