"""The per-image optimisation every method shares (spec §1, §7): z ← z − AdamW(∂L/∂z), L = grad trick + λ·identity."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import torch
from diffusers.optimization import get_constant_schedule, get_cosine_schedule_with_warmup
from PIL import Image
from tqdm.auto import tqdm

from sms.config import LoopConfig, ResolvedRun
from sms.identity import build_identity_loss
from sms.image_tensors import RELEASE_PREVIEW_EVERY, input_tensor, release_saved_image, tensor_to_image
from sms.method import ScoreDistillation, StepState
from sms.models.stack import ModelStack
from sms.rng import VAE_STEP, RandomStreams


@dataclass
class Trace:
    """Per-iteration record kept in the sidecar (device scalars until :meth:`finish`, to avoid host syncs)."""

    t: list[int] = field(default_factory=list)
    distill_grad: list = field(default_factory=list)
    identity_loss: list = field(default_factory=list)
    aux_loss: list = field(default_factory=list)
    nonfinite: list = field(default_factory=list)
    forwards: list[int] = field(default_factory=list)

    def record(self, gradient, identity_term: torch.Tensor | None, aux: dict) -> None:
        self.t.append(gradient.t)
        self.distill_grad.append(gradient.g.abs().mean())
        self.identity_loss.append(identity_term if identity_term is not None else 0.0)
        self.aux_loss.append(aux.get("fake_loss", 0.0))
        self.nonfinite.append(gradient.nonfinite)
        self.forwards.append(gradient.forwards + int(aux.get("forwards", 0)))

    def finish(self) -> "Trace":
        as_numbers = lambda values, kind: [kind(v) for v in values]  # noqa: E731  (one sync per list entry, once)
        return Trace(self.t, as_numbers(self.distill_grad, float), as_numbers(self.identity_loss, float),
                     as_numbers(self.aux_loss, float), as_numbers(self.nonfinite, int), self.forwards)


@dataclass
class LoopResult:
    image: Image.Image
    trace: Trace
    seconds_total: float
    seconds_iterations: float
    peak_memory_bytes: int | None
    previews: list[Image.Image]


def distillation_loss(z: torch.Tensor, g: torch.Tensor, scale: float) -> torch.Tensor:
    """The grad trick, ½·scale·Σ(z − sg(z − g))², whose gradient is scale·g (spec §7, references.md)."""
    return 0.5 * scale * (z - (z - g).detach()).square().sum()


def gradient_scale(loop: LoopConfig, z: torch.Tensor) -> float:
    """1/numel(z) for the ½·mean reduction, or numerator/(h·w) (DDS: 2000/(h·w))."""
    if loop.grad_numerator is None:
        return 1.0 / z.numel()
    return loop.grad_numerator / (z.shape[-2] * z.shape[-1])


def make_optimizer(z: torch.Tensor, loop: LoopConfig):
    if loop.optimizer == "adamw":
        optimizer = torch.optim.AdamW([z], lr=loop.lr, betas=loop.betas, eps=loop.eps, weight_decay=loop.weight_decay)
    elif loop.optimizer == "sgd":
        optimizer = torch.optim.SGD([z], lr=loop.lr, weight_decay=loop.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {loop.optimizer!r}; use 'adamw' or 'sgd'")
    if loop.schedule == "warmup_cosine":
        scheduler = get_cosine_schedule_with_warmup(optimizer, loop.warmup, int(loop.cosine_horizon * loop.iters))
    elif loop.schedule == "constant":
        scheduler = get_constant_schedule(optimizer)
    else:
        raise ValueError(f"unknown schedule {loop.schedule!r}; use 'warmup_cosine' or 'constant'")
    return optimizer, scheduler


@torch.no_grad()
def encode(models: ModelStack, x: torch.Tensor, streams: RandomStreams | Sequence[RandomStreams],
           init: str) -> torch.Tensor:
    """z_src = (VAE posterior sample, or its mean) × scaling factor; the sample's noise is a seeded stream
    (a batch: one stream set per image, each image drawing what it would draw alone)."""
    vae = models.vae
    posterior = vae.encode((2 * x - 1).to(models.device, vae.dtype)).latent_dist
    mean, std = posterior.mean.float(), posterior.std.float()
    if init == "mean":
        latent = mean
    elif init == "sample":
        if isinstance(streams, RandomStreams):
            noise = streams.normal(VAE_STEP, "vae", mean.shape)
        else:
            noise = torch.cat([each.normal(VAE_STEP, "vae", (1, *mean.shape[1:])) for each in streams])
        latent = mean + std * noise.to(mean.device)
    else:
        raise ValueError(f"unknown init {init!r}; use 'sample' or 'mean'")
    return latent * vae.config.scaling_factor


@torch.no_grad()
def decode(models: ModelStack, z: torch.Tensor) -> torch.Tensor:
    vae = models.vae
    return (vae.decode((z / vae.config.scaling_factor).to(vae.dtype)).sample.float() + 1) / 2


class _SavedLatent:
    """Which latent becomes the result: the final one (suite), or the release's last 50-step preview, saved
    through its 256 px preview path (``output_image="release"``, sms.deviations: ``output_image``)."""

    def __init__(self, rule: str, iters: int):
        if rule not in ("suite", "release"):
            raise ValueError(f"unknown output_image {rule!r}; use 'suite' or 'release'")
        if rule == "release" and iters < RELEASE_PREVIEW_EVERY:
            raise ValueError(f"output_image='release' saves the last {RELEASE_PREVIEW_EVERY}-iteration preview, so it "
                             f"needs iters ≥ {RELEASE_PREVIEW_EVERY} (the release fails without one); got {iters}")
        self.rule = rule
        self.preview: torch.Tensor | None = None

    def offer(self, step: int, z: torch.Tensor) -> None:
        if self.rule == "release" and (step + 1) % RELEASE_PREVIEW_EVERY == 0:
            self.preview = z.detach().clone()

    def image(self, models: ModelStack, z: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        if self.rule == "release":
            return release_saved_image(decode(models, self.preview), size)
        return tensor_to_image(decode(models, z.detach()), size)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stylize_image(image: Image.Image, image_id: str, models: ModelStack, run: ResolvedRun, *,
                  progress: bool = True, streams: RandomStreams | None = None,
                  on_step: Callable[[int, torch.Tensor], None] | None = None) -> LoopResult:
    loop = run.loop
    device = models.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    streams = streams or RandomStreams(loop.seed, image_id)
    z_src = encode(models, input_tensor(image, loop.resolution, loop.input_resize), streams, loop.init)
    method: ScoreDistillation = run.method_cls(run.method_config, models, run.run.prompts)
    method.begin(streams)
    identity = build_identity_loss(loop.identity, **loop.identity_options)
    z = z_src.clone().requires_grad_(True)
    saved = _SavedLatent(loop.output_image, loop.iters)
    optimizer, scheduler = make_optimizer(z, loop)
    scale = gradient_scale(loop, z)
    trace, previews = Trace(), []
    _synchronize(device)
    iterations_start = time.perf_counter()
    postfix_every = max(1, loop.iters // 50)
    bar = tqdm(range(loop.iters), desc=f"{run.run.method}:{image_id}", disable=not progress, leave=False)
    for step in bar:
        gradient = method.gradient(StepState(step, loop.iters, z.detach(), z_src, streams))
        loss = distillation_loss(z, gradient.g, scale)
        identity_term = None
        if loop.lambda_identity:
            identity_term = loop.lambda_identity * identity(z, z_src, gradient.t)
            loss = loss + identity_term
            identity_term = identity_term.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        aux = method.update(StepState(step, loop.iters, z.detach(), z_src, streams))
        trace.record(gradient, identity_term, aux)
        if progress and step % postfix_every == 0:  # reading values syncs the device: only now and then
            bar.set_postfix(t=gradient.t, g=f"{float(trace.distill_grad[-1]):.2e}",
                            id=f"{float(trace.identity_loss[-1]):.2e}", aux=f"{float(trace.aux_loss[-1]):.2e}",
                            refresh=False)
        if loop.preview_every and (step + 1) % loop.preview_every == 0:
            previews.append(tensor_to_image(decode(models, z.detach()), (image.width, image.height)))
        saved.offer(step, z)
        if on_step is not None:
            on_step(step, z.detach())
    _synchronize(device)
    iterations_seconds = time.perf_counter() - iterations_start
    result = saved.image(models, z, (image.width, image.height))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return LoopResult(result, trace.finish(), time.perf_counter() - start, iterations_seconds, peak, previews)
