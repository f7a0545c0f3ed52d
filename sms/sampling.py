"""The sampling family's shared machinery: DDIM grids, inversion and sampling loops, image ↔ latent, timings.

A sampling method (StyleID, FreeStyle, Style-LoRA, …) subclasses :class:`DiffusionStylizer` and supplies ε̂ as
a callable ``eps(z, t, i)``, so feature injection or conditioning lives in the method and the loops stay one
definition (the maths is :func:`sms.diffusion.ddim_step`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler
from PIL import Image
from tqdm.auto import tqdm

from sms.diffusion import cfg, ddim_step
from sms.image_tensors import input_tensor, tensor_to_image
from sms.loop import decode, encode
from sms.rng import RandomStreams
from sms.stylizer import Stylized, Stylizer

#: ε̂ of the latent ``z`` at timestep ``t``; ``i`` is the index of ``t`` in its grid (for per-step state)
EpsFn = Callable[[torch.Tensor, int, int], torch.Tensor]


def kept_steps(num_steps: int, strength: float) -> int:
    """⌊N·strength⌋, at most N: the steps image-to-image runs (diffusers' Img2Img rule)."""
    return min(int(num_steps * strength), num_steps)


def cfg_rows(guidance_scale: float) -> int:
    """UNet rows per ε̂: 2 under classifier-free guidance, 1 at scale 1 (the conditional branch alone)."""
    return 1 if guidance_scale == 1.0 else 2


@dataclass(frozen=True)
class SamplingGrid:
    """DDIM timesteps in sampling order (descending) with ᾱ at each and after the last (diffusers' rules:
    "leading" spacing and ``steps_offset`` of the checkpoint's scheduler config; SD-1.5 with 50 steps:
    981, 961, …, 1, then ᾱ = ``final_alpha_cumprod``)."""

    timesteps: tuple[int, ...]
    alpha_bars: tuple[float, ...]
    final_alpha_bar: float

    @classmethod
    def from_scheduler(cls, scheduler, num_steps: int, strength: float = 1.0) -> "SamplingGrid":
        """``strength`` < 1 keeps the last ⌊N·strength⌋ steps (image-to-image, as diffusers' Img2Img pipeline)."""
        ddim = DDIMScheduler.from_config(scheduler.config)
        ddim.set_timesteps(num_steps)
        steps = [int(t) for t in ddim.timesteps]
        steps = steps[num_steps - kept_steps(num_steps, strength):]
        alphas = ddim.alphas_cumprod.double()
        return cls(tuple(steps), tuple(float(alphas[t]) for t in steps), float(ddim.final_alpha_cumprod))

    def __len__(self) -> int:
        return len(self.timesteps)

    def next_alpha_bar(self, i: int) -> float:
        """ᾱ of the level step ``i`` moves to when sampling."""
        return self.alpha_bars[i + 1] if i + 1 < len(self) else self.final_alpha_bar


def invert(eps: EpsFn, z0: torch.Tensor, grid: SamplingGrid, *, progress: bool = False,
           desc: str = "inversion") -> list[torch.Tensor]:
    """DDIM inversion of a clean latent: the latents at the grid's timesteps, in sampling order (first = the
    noisiest). Each step takes ε̂ at the target timestep on the lower-noise latent (diffusers'
    DDIMInverseScheduler, StyleID)."""
    latents, z = [], z0
    order = list(reversed(range(len(grid))))
    for i in tqdm(order, desc=desc, disable=not progress, leave=False):
        z = ddim_step(z, eps(z, grid.timesteps[i], i), grid.next_alpha_bar(i), grid.alpha_bars[i])
        latents.append(z)
    return latents[::-1]


def sample(eps: EpsFn, z_t: torch.Tensor, grid: SamplingGrid, *, progress: bool = False,
           desc: str = "sampling") -> torch.Tensor:
    """Deterministic DDIM sampling from ``z_t`` at the grid's first timestep to the clean latent."""
    z = z_t
    for i in tqdm(range(len(grid)), desc=desc, disable=not progress, leave=False):
        z = ddim_step(z, eps(z, grid.timesteps[i], i), grid.alpha_bars[i], grid.next_alpha_bar(i))
    return z


class Phases:
    """Seconds spent in named phases, the device synchronised at both ends of each."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class DiffusionStylizer(Stylizer):
    """A method on the suite's SD stack: encoding, decoding, text embeddings, timing and UNet-row counting."""

    family = "sampling"
    needs_diffusion = True

    @property
    def device(self) -> torch.device:
        return self.models.device

    @property
    def latent_factor(self) -> int:
        """Pixels per latent position along a side (8 for SD-1.5's VAE)."""
        return 2 ** (len(self.models.vae.config.block_out_channels) - 1)

    def working_tensor(self, image: Image.Image) -> torch.Tensor:
        """The image at the run's working size (short side ``loop.resolution``), as the VAE's input."""
        return input_tensor(image, self.run.loop.resolution, self.run.loop.input_resize)

    def encode(self, image: Image.Image | torch.Tensor, streams: RandomStreams, init: str = "sample") -> torch.Tensor:
        """The image (or its working tensor) as a scaled VAE latent."""
        x = image if isinstance(image, torch.Tensor) else self.working_tensor(image)
        return encode(self.models, x, streams, init)

    def prompt_embeddings(self, prompt: str, negative: str, guidance_scale: float) -> torch.Tensor:
        """[negative, prompt] under classifier-free guidance, [prompt] alone at scale 1."""
        return self.embed(negative, prompt) if cfg_rows(guidance_scale) == 2 else self.embed(prompt)

    @staticmethod
    def guide(out: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """ε̂ from the rows of :meth:`prompt_embeddings`' order."""
        return cfg(out[1:], out[:1], guidance_scale) if cfg_rows(guidance_scale) == 2 else out

    def to_image(self, z: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        return tensor_to_image(decode(self.models, z), size)

    def embed(self, *texts: str) -> torch.Tensor:
        return self.models.embed(list(texts))

    def stylize(self, image: Image.Image, image_id: str, streams: RandomStreams, *,
                exemplar: Image.Image | None = None, progress: bool = True) -> Stylized:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        phases = Phases(self.device)
        forwards_before = self.models.denoisers.forwards
        start = time.perf_counter()
        with torch.no_grad():
            z, record = self.generate(image, image_id, streams, exemplar, phases, progress)
            with phases("decoding"):
                result = self.to_image(z, image.size)
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return Stylized(result, time.perf_counter() - start, phases.seconds,
                        self.models.denoisers.forwards - forwards_before, self.steps(), peak, record)

    def generate(self, image: Image.Image, image_id: str, streams: RandomStreams, exemplar: Image.Image | None,
                 phases: Phases, progress: bool) -> tuple[torch.Tensor, dict]:
        """The result's clean latent and the method's own sidecar fields; time each phase with ``phases``."""
        raise NotImplementedError

    def steps(self) -> int:
        """The method's step count (its sampling steps), the sidecar's ``iterations``."""
        raise NotImplementedError
