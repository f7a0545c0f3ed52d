"""VGG-19 feature maps for Gatys et al.: torchvision's architecture with the user's weights, or a seeded stand-in.

The file is torchvision's own (``vgg19-dcbb9e9d.pth``, ImageNet weights of ``VGG19_Weights.IMAGENET1K_V1``) or
the same state dict as safetensors; the full model's keys (``features.*``, ``classifier.*``) or only the
``features`` module's. Nothing is ever downloaded. ``'tiny'`` (``'tiny:N'``) is a random network seeded by N:
its numbers test the machinery, not the method.
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from sms.models.errors import ModelLoadError
from sms.weights import WeightFileError, parse_stand_in, safetensors_header, weight_stamp

IMAGENET_MEAN = (0.485, 0.456, 0.406)   # torchvision's normalisation, the one its VGG-19 was trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
STANDIN_SEED = 19_000
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
POOLINGS = ("max", "avg")


def missing_weights_message() -> str:
    return (
        "Gatys et al. needs VGG-19 weights and this run names none. Set `stylize.vgg19` in params.yaml (by hand: "
        f"`sms stylize … --vgg19 FILE`) to torchvision's ImageNet VGG-19 file {TORCHVISION_FILE} (548 MB; "
        f"torchvision downloads it from {TORCHVISION_URL} into ~/.cache/torch/hub/checkpoints/ when "
        "`torchvision.models.vgg19(weights='IMAGENET1K_V1')` is first called on a machine with network access; "
        "copy it here), or the same state dict saved as .safetensors. `vgg19: tiny` runs a seeded random "
        "stand-in whose results test the machinery only."
    )


def layer_names(features: nn.Sequential) -> dict[str, int]:
    """``relu4_2`` → its index in torchvision's ``features``: conv/relu named by block and position, pools by block."""
    names, block, position = {}, 1, 0
    for index, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            position += 1
            names[f"conv{block}_{position}"] = index
        elif isinstance(layer, nn.ReLU):
            names[f"relu{block}_{position}"] = index
        else:
            names[f"pool{block}"] = index
            block, position = block + 1, 0
    return names


def empty_features() -> nn.Sequential:
    """torchvision's VGG-19 ``features`` without weights: built on the meta device, so its initialisation draws
    nothing from the global RNG and the classifier's 120 M parameters are never allocated."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        features = vgg19(weights=None).features
    return features.to_empty(device="cpu")


def standin_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The stand-in's ``features`` state dict: He-normal (fan-in) convolutions, zero biases, from one seeded
    generator. Fan-in keeps activations at their scale through 16 layers, as a trained VGG's are."""
    generator = torch.Generator("cpu").manual_seed(STANDIN_SEED + seed)
    state = {}
    for name, tensor in empty_features().state_dict().items():
        if name.endswith("weight"):
            state[name] = nn.init.kaiming_normal_(torch.empty_like(tensor), mode="fan_in", nonlinearity="relu",
                                                  generator=generator)
        else:
            state[name] = torch.zeros_like(tensor)
    return state


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch file (its safe, tensors-only unpickler)."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            safetensors_header(path)
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (WeightFileError, SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
            KeyError) as error:
        raise ModelLoadError(
            f"The VGG-19 weights {str(path)!r} ({path.stat().st_size:,} bytes) cannot be read ({type(error).__name__}: {error}). The file "
            f"is probably truncated or corrupt (an interrupted download?), or not a state dict. Fetch "
            f"{TORCHVISION_FILE} again ({TORCHVISION_URL}) and compare its sha256 prefix with the name's "
            f"(dcbb9e9d…), or save the state dict as .safetensors."
        ) from error
    if not isinstance(state, dict):
        raise ModelLoadError(f"The VGG-19 weights {str(path)!r} hold a {type(state).__name__}, not a state dict "
                             f"(tensor name → tensor) such as torchvision's {TORCHVISION_FILE}.")
    return state.get("state_dict", state)


def features_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path
                   ) -> dict[str, torch.Tensor]:
    """The ``features`` entries of a full model's or a features-only state dict, checked key by key."""
    own = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    own = own or state
    for key, tensor in expected.items():
        found = own.get(key)
        if found is None or tuple(found.shape) != tuple(tensor.shape):
            problem = "is missing" if found is None else f"has shape {tuple(found.shape)}, not {tuple(tensor.shape)}"
            raise ModelLoadError(
                f"The VGG-19 weights {str(path)!r} do not fit torchvision's VGG-19: 'features.{key}' {problem} "
                f"(the file has {len(state)} tensors, e.g. {', '.join(list(state)[:3]) or 'none'}). Give "
                f"torchvision's {TORCHVISION_FILE} (keys features.0.weight … classifier.6.bias) or its "
                f"features' state dict; VGG-16, batch-norm VGGs and Caffe conversions have other layouts."
            )
    return {key: own[key].float() for key in expected}


@functools.lru_cache(maxsize=2)
def _load(reference: str, stamp: tuple, device: str) -> nn.Sequential:
    """``stamp`` (sms.weights.weight_stamp) makes a replaced file a cache miss."""
    features = empty_features()
    stand_in = parse_stand_in(reference)
    if stand_in is not None:
        state = standin_state(stand_in[1])
    else:
        path = Path(reference).expanduser()
        state = features_state(read_state(path), features.state_dict(), path)
    features.load_state_dict(state)
    return features.eval().requires_grad_(False).to(device)


def load_features(reference: str | None, device: str | torch.device = "cpu") -> nn.Sequential:
    """torchvision's VGG-19 ``features`` (frozen, cached per process and device) from ``reference``."""
    if not reference:
        raise ModelLoadError(missing_weights_message())
    if parse_stand_in(reference) is not None:
        return _load(reference, (), str(device))
    path = Path(reference).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"The VGG-19 weights {reference!r} do not exist (looked at {str(path.resolve())!r}). "
                             + missing_weights_message())
    return _load(str(path.resolve()), weight_stamp(str(path)), str(device))


class VGGFeatures(nn.Module):
    """The activations of named layers (``relu1_1``, ``relu4_2``, …) of an image in [0, 1], ImageNet-normalised
    first. ``pooling='avg'`` swaps the max-pools for average pools (Gatys et al. 2016, §2)."""

    def __init__(self, features: nn.Sequential, layers: tuple[str, ...], pooling: str = "max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        index = layer_names(features)
        unknown = [name for name in layers if name not in index]
        if unknown:
            raise ValueError(f"VGG-19 has no layer(s) {', '.join(unknown)}; its layers: {', '.join(index)}")
        self.indices = {name: index[name] for name in layers}
        last = max(self.indices.values())
        kept = [self._swap(layer, pooling) for layer in features[:last + 1]]
        self.body = nn.Sequential(*kept)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @staticmethod
    def _swap(layer: nn.Module, pooling: str) -> nn.Module:
        """torchvision's ReLUs work in place, which would overwrite a conv layer's output once it is kept."""
        if isinstance(layer, nn.ReLU):
            return nn.ReLU()
        if pooling == "avg" and isinstance(layer, nn.MaxPool2d):
            return nn.AvgPool2d(kernel_size=2, stride=2)
        return layer

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = {index: name for name, index in self.indices.items()}
        x, found = (image - self.mean) / self.std, {}
        for index, layer in enumerate(self.body):
            x = layer(x)
            if index in wanted:
                found[wanted[index]] = x
        return found
