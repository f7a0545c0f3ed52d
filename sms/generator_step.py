"""One training step of G_θ with any registered method's gradient (Algorithm 1, issue 14).

z = G_θ(z_src) for a batch of B source latents; the method returns g with one t and one ε per sample
(each sample's draws from its own RandomStreams); the loss is the per-image loop's grad trick
(sms.loop.distillation_loss, scaled by sms.loop.gradient_scale over the whole batch, i.e. ½·mean) plus
λ·identity, and its gradient reaches θ as the vector–Jacobian product scale·Σ_b (∂G(z_src,b)/∂θ)ᵀ g_b.
Nothing here is method-specific: auxiliary networks (SMS's/VSD's fake LoRA) take their update in
``method.update`` on the generator's outputs of this step (shared over the dataset, as in DMD).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sms.config import LoopConfig
from sms.identity import build_identity_loss
from sms.loop import distillation_loss, gradient_scale
from sms.method import Gradient, ScoreDistillation, StepState
from sms.rng import RandomStreams


@dataclass
class GeneratorStepRecord:
    """What one step reports (device scalars; the trainer reads them when it logs)."""

    t: tuple[int, ...]
    distill_grad: torch.Tensor
    identity_loss: torch.Tensor | float
    aux: dict = field(default_factory=dict)
    forwards: int = 0
    nonfinite: torch.Tensor | int = 0


def batch_streams(seed: int, image_ids: Sequence[str]) -> tuple[RandomStreams, ...]:
    """One stream set per sample, keyed by the sample's own image id (crop id) and the run's seed."""
    return tuple(RandomStreams(seed, image_id) for image_id in image_ids)


def per_sample_identity(identity, z: torch.Tensor, z_src: torch.Tensor, t: int | tuple[int, ...]) -> torch.Tensor:
    """Mean over the batch of identity(z_b, z_src_b, t_b): each sample's loss at its own t (PSR's cut-off
    follows t); B = 1 with an int t is the per-image loop's call."""
    if not isinstance(t, tuple):
        return identity(z, z_src, t)
    terms = [identity(z[b:b + 1], z_src[b:b + 1], t_b) for b, t_b in enumerate(t)]
    return torch.stack(terms).mean()


def generator_step(generator: torch.nn.Module, method: ScoreDistillation, z_src: torch.Tensor,
                   streams: Sequence[RandomStreams], step: int, num_steps: int, optimizer: torch.optim.Optimizer,
                   loop: LoopConfig, identity=None) -> tuple[GeneratorStepRecord, Gradient]:
    """θ ← optimizer(∇_θ [grad trick(G_θ(z_src), g) + λ·identity]); then the method's auxiliary update.

    ``loop`` supplies the gradient scale (``grad_numerator``), λ (``lambda_identity``) and the identity loss
    (built from ``loop.identity`` unless a built one is passed, as a trainer does once)."""
    z = generator(z_src)
    gradient = method.gradient(StepState(step, num_steps, z.detach(), z_src, tuple(streams)))
    loss = distillation_loss(z, gradient.g, gradient_scale(loop, z))
    identity_term: torch.Tensor | float = 0.0
    if loop.lambda_identity:
        identity = identity or build_identity_loss(loop.identity, **loop.identity_options)
        identity_term = loop.lambda_identity * per_sample_identity(identity, z, z_src, gradient.t)
        loss = loss + identity_term
        identity_term = identity_term.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    # the fake score learns from the samples that were just scored (DMD), not from a second forward of G
    aux = method.update(StepState(step, num_steps, z.detach(), z_src, tuple(streams)))
    record = GeneratorStepRecord(_as_tuple(gradient.t), gradient.g.abs().mean(), identity_term, aux,
                                 gradient.forwards + int(aux.get("forwards", 0)), gradient.nonfinite)
    return record, gradient


def _as_tuple(t: int | tuple[int, ...]) -> tuple[int, ...]:
    return t if isinstance(t, tuple) else (t,)
