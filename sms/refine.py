"""Semantic-Aware Gradient Refinement (spec §5): the relevance map R from the real UNet's edit direction."""
from __future__ import annotations

import torch


def edit_prompt(style_prompt: str) -> str:
    return f"Turn into {style_prompt}"


def relevance_map(edit_direction: torch.Tensor) -> torch.Tensor:
    """R = minmax(|mean_c d|) per sample over the latent map, broadcast to the channels; ones when flat.

    ``edit_direction`` is d = ε_real(z_t^src; y_edit) − ε_real(z_t^src; ∅), shape (B, C, h, w)."""
    magnitude = edit_direction.mean(dim=1, keepdim=True).abs()
    flat = magnitude.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = high - low
    scaled = torch.where(span > 0, (magnitude - low) / span.clamp_min(torch.finfo(span.dtype).tiny),
                         torch.ones_like(magnitude))
    return scaled.expand_as(edit_direction)
