"""LPIPS (lpips 0.1.4, net='alex', v0.1 linear heads from the wheel) between stylised and content image."""
from __future__ import annotations

import warnings
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import lpips
import torch

from eval.images import pair_rule, paired_tensors
from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from eval.weights import MetricUnavailable, MetricWeights, resolve_alexnet
from sms.results import Sample


def load_alexnet_trunk(net: torch.nn.Module, path: str | Path) -> None:
    """Copy a torchvision AlexNet state dict (``features.<i>.*``) into lpips' sliced trunk."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = {}
    for key in net.state_dict():
        _slice, index, param = key.split(".")
        source = f"features.{index}.{param}"
        if source not in state:
            raise MetricUnavailable(f"LPIPS AlexNet trunk: {path} lacks {source}; not an AlexNet state dict")
        target[key] = state[source]
    net.load_state_dict(target)


def build_lpips(trunk_path: str | Path) -> lpips.LPIPS:
    """lpips.LPIPS(net='alex') whose AlexNet trunk comes from a file instead of the hub."""
    with warnings.catch_warnings():  # lpips 0.1.4 still passes torchvision's deprecated pretrained=False
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    load_alexnet_trunk(model.net, trunk_path)
    return model.eval()


@lru_cache(maxsize=1)
def _cached_lpips(path: str, mtime_ns: int, device: str) -> lpips.LPIPS:
    return build_lpips(path).to(device)


@METRICS.register("lpips")
class LPIPSMetric(PerImageMetric):
    """LPIPS(stylised, content); images in [0, 1] are mapped to [-1, 1] as lpips expects. ``short_side=S``
    resizes both as torchvision's ``Resize(S)`` first (StyleID's ArtFID with S = 512)."""

    direction = Direction.LOWER
    pairing = Pairing.CONTENT
    needs = ("content",)

    def __init__(
        self,
        weights: MetricWeights | None = None,
        *,
        device: str = "cpu",
        size: int | None = None,
        short_side: int | None = None,
    ):
        super().__init__(weights, device=device)
        trunk = resolve_alexnet(self.weights)
        self.size, self.short_side = size, short_side
        self.trunk_hash = self.weights.weights_id(trunk)
        self.model = _cached_lpips(str(trunk), trunk.stat().st_mtime_ns, str(self.target_device))

    def distance(self, output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        dev = self.target_device
        return self.model(output.to(dev) * 2 - 1, content.to(dev) * 2 - 1).flatten()

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        with torch.inference_mode():
            pairs = (paired_tensors(s.output, s.content, self.size, self.short_side) for s in samples)
            return torch.cat([self.distance(*pair) for pair in pairs])

    def definition(self) -> str:
        return f"lpips-{version('lpips')}-alex-v0.1@{self.trunk_hash}/{pair_rule(self.size, self.short_side)}"
