"""CLIP score (text↔image) and CLIP style similarity (image↔style set) with open_clip and local weights.

Computed from open_clip's own embeddings, not torchmetrics' CLIPScore (which needs transformers' CLIP
and breaks on transformers 5, torchmetrics#3407), but with its aggregate: torchmetrics scores a set as
max(mean_i 100·cos_i, 0), the clip applied once to the mean. Hessel et al.'s per-image clip
(mean_i max(100·cos_i, 0)) is larger as soon as one cosine is negative: [−10, 30] gives 10 vs 15.
:class:`CLIPScore` therefore yields 100·cos unclipped per image, and the runner's mean of them is
torchmetrics' score whenever that mean is positive (a negative mean, which torchmetrics reports as 0,
is reported as is: it flags a broken pairing instead of hiding it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from eval.images import load_rgb
from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from eval.weights import MetricUnavailable, MetricWeights, require_file, tagged_hash
from sms.results import Sample


@dataclass(frozen=True)
class OpenClip:
    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    arch: str
    weights_hash: str
    device: torch.device

    def encode_images(self, paths) -> torch.Tensor:
        batch = torch.stack([self.preprocess(load_rgb(p)) for p in paths]).to(self.device)
        return F.normalize(self.model.encode_image(batch).float(), dim=-1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    @property
    def definition(self) -> str:
        return f"open_clip-{self.arch}@{self.weights_hash}/openclip-preprocess"


@lru_cache(maxsize=None)
def register_clip_config(config: str, arch: str, mtime_ns: int) -> None:
    """Register an open_clip model config json (open_clip names it by its file stem, which must be ``arch``)."""
    import open_clip

    if Path(config).stem != arch:
        raise MetricUnavailable(f"CLIP: 'clip_config' {config} defines {Path(config).stem!r}, not 'clip_arch' {arch!r}")
    open_clip.add_model_config(config)


@lru_cache(maxsize=2)
def _load_open_clip(arch: str, path: str, device: str, standin: bool) -> OpenClip:
    import open_clip

    if arch not in open_clip.list_models():
        raise MetricUnavailable(f"CLIP: unknown open_clip architecture {arch!r} ('clip_arch', e.g. ViT-B-32, ViT-L-14)")
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=path, device=device)
    tokenizer = open_clip.get_tokenizer(arch)
    return OpenClip(model.eval(), preprocess, tokenizer, arch, tagged_hash(path, standin), torch.device(device))


def load_open_clip(weights: MetricWeights, device: torch.device) -> OpenClip:
    path = require_file(weights.clip, f"CLIP weights for {weights.clip_arch}", "clip")
    if weights.clip_config is not None:
        config = require_file(weights.clip_config, "open_clip model config", "clip_config")
        register_clip_config(str(config.resolve()), weights.clip_arch, config.stat().st_mtime_ns)
    return _load_open_clip(weights.clip_arch, str(path), str(device), weights.standin)


@METRICS.register("clip_score")
class CLIPScore(PerImageMetric):
    """100·cos(E_image(stylised), E_text(prompt)) per image, unclipped (module docstring: the aggregate)."""

    direction = Direction.HIGHER
    pairing = Pairing.PROMPT
    needs = ("prompt",)

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu"):
        super().__init__(weights, device=device)
        self.clip = load_open_clip(self.weights, self.target_device)

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        with torch.inference_mode():
            image = self.clip.encode_images([s.output for s in samples])
            text = self.clip.encode_texts([s.prompt for s in samples])
        return (100 * (image * text).sum(-1)).cpu()

    def definition(self) -> str:
        return f"{self.clip.definition}/100cos-unclipped"


@METRICS.register("clip_style")
class CLIPStyleSimilarity(PerImageMetric):
    """100 × mean over the style reference images of cos(E_image(stylised), E_image(reference))."""

    direction = Direction.HIGHER
    pairing = Pairing.STYLE_REFS
    needs = ("style_refs",)

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu"):
        super().__init__(weights, device=device)
        self.clip = load_open_clip(self.weights, self.target_device)
        self._reference: dict[tuple, torch.Tensor] = {}
        self.n_refs = 0

    def reference_embedding(self, refs: tuple) -> torch.Tensor:
        if refs not in self._reference:
            with torch.inference_mode():
                self._reference[refs] = torch.cat([self.clip.encode_images(refs[i:i + 16]) for i in range(0, len(refs), 16)])
        self.n_refs = len(refs)
        return self._reference[refs]

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        with torch.inference_mode():
            image = self.clip.encode_images([s.output for s in samples])
            values = [100 * (self.reference_embedding(s.style_refs) @ image[i]).mean() for i, s in enumerate(samples)]
        return torch.stack(values).cpu()

    def definition(self) -> str:
        return f"{self.clip.definition}/mean-cos-to-style-set"

    def sizes(self) -> str:
        return f"{super().sizes()}:ref={self.n_refs}"
