"""Style-LoRA baselines: SD-1.5 sampled with the style network alone (the style LoRA or style checkpoint,
``models.denoisers.style``; no weights beyond SMS's own, plus a ControlNet for the second).

style_lora             SDEdit image-to-image (Meng et al. 2022) as diffusers' StableDiffusionImg2ImgPipeline: the
                       content latent noised at the first kept timestep (the last ⌊N·strength⌋ of N DDIM steps),
                       then deterministic DDIM with CFG on the run's target prompt "{style}, {caption}".
style_lora_controlnet  the same under an SD-1.5 ControlNet (Zhang et al. 2023) fed a canny or tile condition of the
                       content. strength 1 (its default: the SMS paper's Table 1 variant) is text-to-image as diffusers'
                       StableDiffusionControlNetPipeline: pure noise at the first timestep, the content entering
                       only through the condition; strength < 1 is image-to-image as above.
The SMS paper states no settings: the defaults are diffusers' pipelines' (50 steps, CFG 7.5, image-to-image
strength 0.8, conditioning scale 1). Canny edges come from scikit-image (no OpenCV), at diffusers' documented
OpenCV thresholds 100/200 on 8-bit intensities, after skimage's Gaussian (σ = 1; OpenCV's has none), on grayscale.
UNet rows: 2 per step (CFG); each ControlNet call also counts its rows (2 per step) as UNet rows.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sms.config import ConfigError
from sms.diffusion import add_noise
from sms.models.controlnet import TINY, check_fits, controlnet_reference, load_controlnet
from sms.models.stack import DTYPES
from sms.sampling import DiffusionStylizer, SamplingGrid, cfg_rows, kept_steps, sample
from sms.stylizer import stylizers

CONDITIONS = ("canny", "tile")


@dataclass
class Config:
    steps: int = 50
    strength: float = 0.8                # the last ⌊steps·strength⌋ DDIM steps run from the noised content
    guidance_scale: float = 7.5
    negative_prompt: str = ""


@dataclass
class ControlNetConfig(Config):
    strength: float = 1.0                # 1: text-to-image under the ControlNet (pure noise start)
    condition: str = "canny"             # canny | tile (the content itself), matching the ControlNet's training
    conditioning_scale: float = 1.0
    canny_sigma: float = 1.0
    canny_thresholds: tuple[float, float] = (100.0, 200.0)   # hysteresis low, high on 8-bit intensities


def canny_condition(x: torch.Tensor, sigma: float, thresholds: tuple[float, float]) -> torch.Tensor:
    """White edges on black, 3 channels in [0, 1] (the canny ControlNet's input) of an image in [0, 1]."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    gray = rgb2gray(x[0].permute(1, 2, 0).double().cpu().numpy())
    low, high = (value / 255.0 for value in thresholds)   # a float image: thresholds on its [0, 1] scale
    edges = canny(gray, sigma=sigma, low_threshold=low, high_threshold=high)
    return torch.from_numpy(edges.astype(np.float32))[None, None].repeat(1, 3, 1, 1)


@contextmanager
def controlnet_residuals(unet, down: tuple[torch.Tensor, ...], mid: torch.Tensor):
    """Hand the ControlNet's residuals to the UNet's next calls (the keywords diffusers' pipelines pass), so the
    UNet is still called through ``Denoisers`` and its rows counted there."""
    def inject(module, args, kwargs):
        return args, {**kwargs, "down_block_additional_residuals": down, "mid_block_additional_residual": mid}

    handle = unet.register_forward_pre_hook(inject, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@stylizers.register("style_lora")
class StyleLora(DiffusionStylizer):
    Config = Config
    style_inputs = ("prompt", "lora")
    uses_controlnet = False

    def __init__(self, config: Config, models, run):
        super().__init__(config, models, run)
        if config.steps < 1 or not 0.0 < config.strength <= 1.0 or kept_steps(config.steps, config.strength) < 1:
            raise ConfigError(f"{run.run.method} needs steps ≥ 1 and 0 < strength ≤ 1 keeping at least one step "
                              f"(⌊steps·strength⌋ ≥ 1); got steps={config.steps}, strength={config.strength}.")

    @classmethod
    def expected_unet_forwards(cls, config: Config, run) -> int:
        rows = cfg_rows(config.guidance_scale) * (2 if cls.uses_controlnet else 1)
        return kept_steps(config.steps, config.strength) * rows

    def steps(self) -> int:
        return kept_steps(self.config.steps, self.config.strength)

    def generate(self, image, image_id, streams, exemplar, phases, progress):
        config = self.config
        grid = SamplingGrid.from_scheduler(self.models.scheduler, config.steps, config.strength)
        with phases("encoding"):
            x = self.working_tensor(image)
            z_content = self.encode(x, streams) if config.strength < 1.0 else None
        shape = z_content.shape if z_content is not None else self.latent_shape(x)
        noise = streams.normal(0, "noise", shape, self.device)
        z_start = noise if z_content is None else add_noise(z_content, noise, grid.alpha_bars[0])
        emb = self.prompt_embeddings(self.run.run.prompts.target, config.negative_prompt, config.guidance_scale)
        condition = self.condition(x, shape)

        def eps(z, t, i):
            rows = z.repeat(emb.shape[0], 1, 1, 1)
            timestep = torch.tensor(t, device=self.device)
            out = self.style_eps(rows, timestep, emb, condition)
            return self.guide(out, config.guidance_scale)

        with phases("sampling"):
            z = sample(eps, z_start, grid, progress=progress, desc=self.run.run.method)
        return z, {"sampling": {"start_timestep": grid.timesteps[0], "steps_run": len(grid),
                                "text_to_image": z_content is None}}

    def latent_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        factor = self.latent_factor
        return (1, self.models.unet.config.in_channels, x.shape[2] // factor, x.shape[3] // factor)

    def condition(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor | None:
        return None

    def style_eps(self, z: torch.Tensor, t: torch.Tensor, emb: torch.Tensor, condition) -> torch.Tensor:
        return self.models.denoisers.style(z, t, emb)


@stylizers.register("style_lora_controlnet")
class StyleLoraControlNet(StyleLora):
    Config = ControlNetConfig
    spec_weights = ("controlnet",)
    uses_controlnet = True

    def __init__(self, config: ControlNetConfig, models, run):
        super().__init__(config, models, run)
        if config.condition not in CONDITIONS:
            raise ConfigError(f"style_lora_controlnet's condition is one of {', '.join(CONDITIONS)} (matching the "
                              f"ControlNet's training); got {config.condition!r}.")
        spec = run.run.model
        reference = controlnet_reference(spec)
        self.controlnet = load_controlnet(reference, dtype=DTYPES[spec.dtype], device=models.device,
                                          allow_pickle=spec.allow_pickle)
        check_fits(self.controlnet, models.denoisers.style_unet, reference)

    @classmethod
    def weights(cls, run) -> dict[str, str | None]:
        return {"controlnet": controlnet_reference(run.run.model)}

    @classmethod
    def stand_in(cls, run) -> bool:
        return super().stand_in(run) or controlnet_reference(run.run.model) == TINY

    def condition(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        config = self.config
        image = canny_condition(x, config.canny_sigma, config.canny_thresholds) if config.condition == "canny" else x
        size = (shape[2] * self.latent_factor, shape[3] * self.latent_factor)
        if tuple(image.shape[2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        return image.to(self.device, self.controlnet.dtype)

    def style_eps(self, z: torch.Tensor, t: torch.Tensor, emb: torch.Tensor, condition) -> torch.Tensor:
        dtype = self.controlnet.dtype
        down, mid = self.controlnet(z.to(dtype), t, encoder_hidden_states=emb.to(dtype),
                                    controlnet_cond=condition.repeat(z.shape[0], 1, 1, 1),
                                    conditioning_scale=self.config.conditioning_scale, return_dict=False)
        self.models.denoisers.forwards += z.shape[0]   # ControlNet rows count as UNet rows
        with controlnet_residuals(self.models.denoisers.style_unet, down, mid):
            return self.models.denoisers.style(z, t, emb)
