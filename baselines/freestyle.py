"""FreeStyle (He et al. 2024, arXiv 2401.15636): text-guided style transfer by a dual-stream UNet, no training.

The content image (Lanczos-resized, PIL ``EDGE_ENHANCE_MORE``) is encoded and noised at the first of 30 DDIM
steps; at each step pass 1 runs the UNet on the noisy latent with the style prompt (CFG) and gives only the skip
features its decoder receives; pass 2 runs the *clean* content latent with pass 1's skips in place of its own,
and pass 2's ε̂ (CFG 5) drives the DDIM step. Inside ``CrossAttnUpBlock2D`` each resnet's input is modulated:
the backbone's first n channels scaled by (b − 1)·minmax(mean_c h) + 1, the skip's centred 2×2 FFT box by s.
Facts from the authors' SDXL code: docs/references.md §5.

SD-1.5 port: the suite's choices
* Values keyed by the width of the backbone entering each resnet, as the authors' block branches on it (so the
  first resnet of a 640-wide block, fed 1280 channels, gets the 1280 values). Widths are ranked widest first:
    rank 0 (SD-1.5 1280): n = 160 (1/8), b = 2.5, s = 1    the authors' recommended SDXL values, unchanged
    rank 1 (SD-1.5 640):  n = 320 (1/2), b = 1.4, s = 0.2  the authors' fixed SDXL values, unchanged
    rank 2 (SD-1.5 320):  unmodulated                      SDXL's 320-wide stage is an UpBlock2D, which FreeStyle
                                                           leaves alone; SD-1.5's is a CrossAttn one
  SD-1.5 and SDXL share the widths 1280/640/320, so the modulated features play the same part in both; the tiny
  UNet (64, 32) gets ranks 0 and 1.
* The content keeps its aspect (short side ``loop.resolution``) instead of a 1024² square.
* One posterior sample of the content latent serves every step (the official code re-encodes at each step
  with its advancing generator: a fresh posterior sample per step).
* Negative prompt "" (the official script's default is a long "worst quality, …" list): ``negative_prompt``.
* Pass 1 runs the whole UNet, as the official code does; its ε̂ is discarded. UNet rows: 2 passes × 2 (CFG) × steps.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial

import torch
from diffusers.models.unets.unet_2d_blocks import CrossAttnUpBlock2D
from PIL import Image, ImageFilter

from sms.config import ConfigError
from sms.diffusion import add_noise
from sms.image_tensors import release_working_size, working_size
from sms.sampling import DiffusionStylizer, SamplingGrid, cfg_rows, sample
from sms.stylizer import stylizers


@dataclass
class Config:
    steps: int = 30                      # DDIM steps; the content is noised at the first (t = 958 for SD-1.5)
    guidance_scale: float = 5.0
    negative_prompt: str = ""
    edge_enhance: bool = True            # PIL EDGE_ENHANCE_MORE on the content before encoding
    modulation: bool = True              # False: the dual stream alone (skip routing, no b/s hooks)
    # per backbone width, widest first (SD-1.5: 1280, 640, 320; tiny: 64, 32); widths past the end: unmodulated
    channel_fraction: tuple[float, ...] = (0.125, 0.5, 0.0)   # n = fraction × width: 160 of 1280, 320 of 640
    b: tuple[float, ...] = (2.5, 1.4, 1.0)
    s: tuple[float, ...] = (1.0, 0.2, 1.0)
    fft_half_box: int = 1                # the scaled box spans centre ± this (the authors' threshold 1: 2×2)


def structure_scale(h: torch.Tensor, b: float) -> torch.Tensor:
    """(b − 1)·minmax(mean_c h) + 1 per sample: FreeU's structure-related backbone factor, as FreeStyle uses it.
    A flat channel mean has no structure to follow: factor 1 (the authors' code divides by zero there)."""
    mean = h.mean(1, keepdim=True)
    low, high = mean.amin((2, 3), keepdim=True), mean.amax((2, 3), keepdim=True)
    span = high - low
    normalised = torch.where(span > 0, (mean - low) / span, torch.zeros_like(mean))
    return (b - 1) * normalised + 1


def scale_backbone(h: torch.Tensor, n: int, b: float) -> torch.Tensor:
    """The first ``n`` channels of the backbone times :func:`structure_scale`."""
    return torch.cat([h[:, :n] * structure_scale(h, b), h[:, n:]], 1)


def fourier_box(x: torch.Tensor, s: float, half: int = 1) -> torch.Tensor:
    """The centred (2·half)² box of the shifted 2-D spectrum scaled by ``s`` (FreeU's Fourier filter), in float64
    as the authors run it."""
    freq = torch.fft.fftshift(torch.fft.fftn(x.double(), dim=(-2, -1)), dim=(-2, -1))
    height, width = freq.shape[-2:]
    mask = torch.ones(height, width, dtype=torch.float64, device=x.device)
    mask[max(height // 2 - half, 0):height // 2 + half, max(width // 2 - half, 0):width // 2 + half] = s
    filtered = torch.fft.ifftn(torch.fft.ifftshift(freq * mask, dim=(-2, -1)), dim=(-2, -1)).real
    return filtered.to(x.dtype)


def width_settings(config: Config, block_widths) -> dict[int, tuple[int, float, float]]:
    """backbone width → (n, b, s), widths ranked widest first."""
    widths = sorted(set(block_widths), reverse=True)
    return {width: (round(config.channel_fraction[rank] * width), config.b[rank], config.s[rank])
            for rank, width in enumerate(widths[:len(config.b)])}


class SkipRouter:
    """Pass 1 records the skips each up block receives; pass 2 hands them to the same block in place of its
    own (forward pre-hooks on every up block; the authors substitute the whole skip stack)."""

    def __init__(self, unet):
        self.blocks = list(unet.up_blocks)
        self.recorded: dict[int, tuple[torch.Tensor, ...]] = {}
        self.mode: str | None = None

    def _hook(self, module, args, kwargs):
        if self.mode == "record":
            self.recorded[id(module)] = kwargs["res_hidden_states_tuple"]
        elif self.mode == "substitute":
            return args, {**kwargs, "res_hidden_states_tuple": self.recorded[id(module)]}
        return None

    @contextmanager
    def installed(self):
        handles = [block.register_forward_pre_hook(self._hook, with_kwargs=True) for block in self.blocks]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def stream(self, mode: str):
        self.mode = mode
        try:
            yield
        finally:
            self.mode = None


class Modulation:
    """b and s at each resnet input of every ``CrossAttnUpBlock2D`` (= cat(backbone, skip), the point where the
    authors modulate); the block's pre-hook notes its skips' widths so the resnet hooks can split the input."""

    def __init__(self, unet, settings: dict[int, tuple[int, float, float]], half: int):
        self.blocks = [block for block in unet.up_blocks if isinstance(block, CrossAttnUpBlock2D)]
        self.settings = settings
        self.half = half
        self.skip_widths: dict[int, list[int]] = {}

    def _note_skips(self, block, args, kwargs):
        self.skip_widths[id(block)] = [skip.shape[1] for skip in kwargs["res_hidden_states_tuple"]]

    def _modulate(self, block, layer: int, resnet, args):
        x, *rest = args
        skip_width = self.skip_widths[id(block)][-1 - layer]   # resnets take the skips last first
        backbone, skip = x[:, :-skip_width], x[:, -skip_width:]
        if backbone.shape[1] not in self.settings:
            return None
        n, b, s = self.settings[backbone.shape[1]]
        return (torch.cat([scale_backbone(backbone, n, b), fourier_box(skip, s, self.half)], 1), *rest)

    @contextmanager
    def installed(self):
        handles = []
        for block in self.blocks:
            handles.append(block.register_forward_pre_hook(self._note_skips, with_kwargs=True))
            handles += [resnet.register_forward_pre_hook(partial(self._modulate, block, layer))
                        for layer, resnet in enumerate(block.resnets)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def freestyle_content(image: Image.Image, size: tuple[int, int], edge_enhance: bool) -> Image.Image:
    """The authors' ``load_img_f``: Lanczos to the working size, then ``EDGE_ENHANCE_MORE``."""
    resized = image.resize(size, Image.Resampling.LANCZOS)
    return resized.filter(ImageFilter.EDGE_ENHANCE_MORE) if edge_enhance else resized


@stylizers.register("freestyle")
class FreeStyle(DiffusionStylizer):
    Config = Config
    style_inputs = ("prompt",)

    def __init__(self, config: Config, models, run):
        super().__init__(config, models, run)
        lengths = {len(config.channel_fraction), len(config.b), len(config.s)}
        if len(lengths) != 1 or not all(0.0 <= f <= 1.0 for f in config.channel_fraction):
            raise ConfigError(
                f"FreeStyle's channel_fraction, b and s give one value per backbone width (widest first) and "
                f"channel_fraction lies in [0, 1]; got channel_fraction={config.channel_fraction}, b={config.b}, "
                f"s={config.s}.")
        if config.steps < 1 or config.fft_half_box < 0:
            raise ConfigError(f"FreeStyle needs steps ≥ 1 and fft_half_box ≥ 0; got {config.steps}, "
                              f"{config.fft_half_box}.")

    @classmethod
    def expected_unet_forwards(cls, config: Config, run) -> int:
        return config.steps * 2 * cfg_rows(config.guidance_scale)

    def steps(self) -> int:
        return self.config.steps

    def generate(self, image, image_id, streams, exemplar, phases, progress):
        config, loop = self.config, self.run.loop
        rule = working_size if loop.input_resize == "suite" else release_working_size
        with phases("encoding"):
            content = freestyle_content(image, rule(image.width, image.height, loop.resolution), config.edge_enhance)
            z_content = self.encode(content, streams)
        grid = SamplingGrid.from_scheduler(self.models.scheduler, config.steps)
        z_start = add_noise(z_content, streams.normal(0, "noise", z_content.shape, self.device), grid.alpha_bars[0])
        emb = self.prompt_embeddings(self.run.run.prompts.style, config.negative_prompt, config.guidance_scale)
        rows = emb.shape[0]
        unet = self.models.unet
        router = SkipRouter(unet)
        modulation = Modulation(unet, width_settings(config, unet.config.block_out_channels), config.fft_half_box)

        def eps(z, t, i):
            timestep = torch.tensor(t, device=self.device)
            with router.stream("record"):
                self.models.denoisers.real(z.repeat(rows, 1, 1, 1), timestep, emb)
            with router.stream("substitute"):
                out = self.models.denoisers.real(z_content.repeat(rows, 1, 1, 1), timestep, emb)
            return self.guide(out, config.guidance_scale)

        with phases("sampling"), router.installed(), modulation.installed() if config.modulation else nullcontext():
            z = sample(eps, z_start, grid, progress=progress, desc="freestyle")
        widths = {str(w): list(v) for w, v in modulation.settings.items()} if config.modulation else {}
        return z, {"freestyle": {"start_timestep": grid.timesteps[0], "modulation_n_b_s": widths}}
