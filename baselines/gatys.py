"""Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016): the image itself
is optimised so that its VGG-19 Gram matrices match the exemplar's and its relu4_2 features the content's.

Loss scaling follows the first author's PyTorch implementation (leongatys/PytorchNeuralStyleTransfer, the
``NeuralStyleTransfer`` notebook): Gram matrices divided by the number of positions, mean squared errors, style
layer l weighted β/N_l² (N_l its channels), L-BFGS from the content image, no clamping until the end. That code
feeds Caffe's VGG-19 with [0, 255] BGR input and uses β = 1e3; the suite feeds torchvision's VGG-19 with
ImageNet-normalised [0, 1] input, whose activations are ≈ 255·0.226 ≈ 58× smaller at the input, so the style
term (4th power of activations) loses ≈ 58² ≈ 3e3 against the content term (2nd power): β = 1e6 restores the
balance to within the estimate and is what PyTorch's neural-style tutorial uses with the same per-layer form on
the same network. Unverified on real weights here (none offline): calibrate β before paper runs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm.auto import tqdm

from sms.config import ConfigError
from sms.image_tensors import input_tensor, tensor_to_image
from sms.models.vgg import POOLINGS, VGGFeatures, load_features
from sms.rng import VAE_STEP, RandomStreams
from sms.stylizer import Stylized, Stylizer, stylizers
from sms.weights import parse_stand_in

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
OPTIMIZERS = {"lbfgs": 1.0, "adam": 0.02}   # name → default lr (L-BFGS: torch's; Adam: pixels in [0, 1])
INITS = ("content", "noise")
MIN_SIDE = 32   # relu5_1 sits after four 2× pools: 2×2 positions at 32 px


@dataclass
class GatysConfig:
    iterations: int = 500          # L-BFGS iterations (one loss evaluation each): the author's notebook's max_iter
    optimizer: str = "lbfgs"       # lbfgs (the paper's and the notebook's) | adam
    lr: float | None = None        # None: the optimiser's default in OPTIMIZERS
    content_weight: float = 1.0    # α
    style_weight: float = 1e6      # β (module docstring); layer l gets β/N_l²
    style_layers: tuple[str, ...] = STYLE_LAYERS
    content_layer: str = CONTENT_LAYER
    init: str = "content"          # content (the notebook) | noise (the paper: uniform white noise from the streams)
    size: int | None = None        # short side of the optimised image; None: the run's loop.resolution
    style_size: int | None = None  # short side of the exemplar; None: ``size`` (the notebook scales both alike)
    pooling: str = "max"           # torchvision's max-pools | avg (the paper's §2 preference)

    def __post_init__(self):
        problems = []
        if self.iterations < 1:
            problems.append(f"iterations must be ≥ 1, got {self.iterations}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.init not in INITS:
            problems.append(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        for name in ("size", "style_size"):
            value = getattr(self, name)
            if value is not None and value < MIN_SIDE:
                problems.append(f"{name} must be ≥ {MIN_SIDE} px (relu5_1 needs four 2× poolings), got {value}")
        if min(self.content_weight, self.style_weight) < 0 or (self.lr is not None and self.lr <= 0):
            problems.append("content_weight and style_weight must be ≥ 0 and lr > 0")
        if problems:
            raise ConfigError("gatys: " + "; ".join(problems) + ".")
        self.style_layers = tuple(self.style_layers)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Eq. 3 of the paper, G = F·Fᵀ, divided by the number of positions M_l (the notebook's GramMatrix)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def style_loss(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 4–5 as the notebook weighs them: Σ_l mean((G_l − A_l)²)/N_l²; β is applied by the caller."""
    return sum(((g - a) ** 2).mean() / g.shape[-1] ** 2 for g, a in zip(grams, targets))


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1 as a mean instead of ½·sum (the notebook's MSE), so α does not depend on the image size."""
    return ((features - target) ** 2).mean()


class Objective:
    """Style and content losses of an image against fixed targets (the exemplar's Grams, the content's features)."""

    def __init__(self, vgg: VGGFeatures, config: GatysConfig, content: torch.Tensor, style: torch.Tensor):
        self.vgg, self.config = vgg, config
        with torch.no_grad():
            self.style_targets = [gram(f) for f in self._style_features(vgg(style))]
            self.content_target = vgg(content)[config.content_layer]

    def _style_features(self, found: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [found[name] for name in self.config.style_layers]

    def losses(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        found = self.vgg(image)
        grams = [gram(f) for f in self._style_features(found)]
        return style_loss(grams, self.style_targets), content_loss(found[self.config.content_layer],
                                                                   self.content_target)

    def total(self, style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return self.config.content_weight * content + self.config.style_weight * style


def make_optimizer(config: GatysConfig, image: torch.Tensor) -> torch.optim.Optimizer:
    lr = config.lr if config.lr is not None else OPTIMIZERS[config.optimizer]
    if config.optimizer == "lbfgs":
        # one iteration per step() so that `iterations` counts loss evaluations exactly (no line search)
        return torch.optim.LBFGS([image], lr=lr, max_iter=1)
    return torch.optim.Adam([image], lr=lr)


@stylizers.register("gatys")
class Gatys(Stylizer):
    """Per-image optimisation against VGG-19 (``ModelSpec.vgg19``: torchvision's file, or 'tiny' = stand-in).

    The image is optimised in [0, 1] RGB at the run's working size (short side ``size``, the suite's resize
    rule), unclamped while optimising (as the notebook), clamped and resized back to the input's size at the end.
    Computed in fp32 on ``ModelSpec.device``; the spec's dtype does not apply."""

    Config = GatysConfig
    family = "classic"
    style_inputs = ("exemplar",)
    needs_diffusion = False
    spec_weights = ("vgg19",)

    @classmethod
    def expected_unet_forwards(cls, config, run) -> int:
        return 0

    @classmethod
    def stand_in(cls, run) -> bool:
        reference = run.run.model.vgg19
        return bool(reference) and parse_stand_in(reference) is not None

    def stylize(self, image: Image.Image, image_id: str, streams: RandomStreams, *,
                exemplar: Image.Image | None = None, progress: bool = True) -> Stylized:
        if exemplar is None:
            raise ValueError("gatys takes an exemplar style image (RunConfig.exemplar, --exemplar) and got none.")
        config, device = self.config, torch.device(self.run.run.model.device)
        vgg = VGGFeatures(load_features(self.run.run.model.vgg19, device),
                          (*config.style_layers, config.content_layer), config.pooling).to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        side = config.size or self.run.loop.resolution
        content = input_tensor(image, side, self.run.loop.input_resize).to(device)
        style = input_tensor(exemplar, config.style_size or side).to(device)
        objective = Objective(vgg, config, content, style)
        x, trace = self.optimise(objective, self.initial(content, streams), progress)
        with torch.no_grad():
            result = x.clamp(0, 1)
            final = objective.losses(result)
            own = objective.losses(content)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        record = {"losses": {**trace, "final": {"style": float(final[0]), "content": float(final[1])},
                             "content_image": {"style": float(own[0]), "content": float(own[1])}}}
        return Stylized(tensor_to_image(result, image.size), seconds, {"optimisation": seconds}, 0,
                        config.iterations, peak, record)

    def initial(self, content: torch.Tensor, streams: RandomStreams) -> torch.Tensor:
        if self.config.init == "content":
            return content.clone()
        noise = torch.rand(content.shape, generator=streams.generator(VAE_STEP, "gatys_init"))
        return noise.to(content.device)

    def optimise(self, objective: Objective, x: torch.Tensor, progress: bool
                 ) -> tuple[torch.Tensor, dict[str, list[float]]]:
        """``iterations`` optimiser steps; the trace holds each step's losses at the image it started from."""
        x.requires_grad_(True)
        optimizer = make_optimizer(self.config, x)
        trace: dict[str, list[float]] = {"style": [], "content": []}

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            style, content = objective.losses(x)
            total = objective.total(style, content)
            total.backward()
            trace["style"].append(style.item())
            trace["content"].append(content.item())
            return total

        for _ in tqdm(range(self.config.iterations), desc="gatys", disable=not progress, leave=False):
            optimizer.step(closure)
        if not torch.isfinite(x).all():
            bad = next((i for i, v in enumerate(trace["style"]) if not math.isfinite(v)), len(trace["style"]))
            raise RuntimeError(f"gatys diverged (the image is no longer finite; losses non-finite from iteration "
                               f"{bad}): lower `lr`, or use optimizer 'adam'.")
        return x.detach(), trace
