"""StyleID (Chung, Hyun & Heo, "Style Injection in Diffusion", CVPR 2024): training-free style transfer from an
exemplar image by self-attention injection during DDIM sampling.

What runs (facts from the authors' ``run_styleid.py``, docs/references.md §5):
1. content and exemplar are VAE-encoded (posterior sample) and DDIM-inverted together, two rows of one UNet
   call per step: the base network, the empty prompt, no CFG, ``steps`` steps;
2. during inversion each injected layer caches, per step, the content's Q and the exemplar's K and V
   (sms.attention_injection); the injected layers are the decoder's self-attention at the last two
   resolutions with attention (SD-1.5: ``up_blocks[2..3].attentions[0..2]...attn1`` = LDM output blocks 6–11);
3. sampling starts from AdaIN(z_c^T, z_s^T) and runs with the exemplar's K, V, the query γ·Q_c + (1 − γ)·Q_cs
   and the logits × T in the injected layers, every step; every other layer is untouched.

Grids. Default: one grid for both loops (SD-1.5, 50 steps: 1, 21, …, 981): inversion ends at z_981 and
sampling starts there, at the noise level inversion reached. ``t999_start=True`` (profile ``official_t999``)
reproduces the authors' quirk: inversion goes one step further, onto t = 999 (UNet at 999 on z_981), and
sampling starts at t = 961 (``start_step`` 49: 49 steps) from that latent — a t = 999 latent treated as
t = 961 — for 2·51 + 49 = 151 UNet rows instead of 2·50 + 50 = 150.

Suite choices. The exemplar is centre-cropped to the content's working aspect and resized to the content's
working size with the suite's resize (bilinear, antialiased; the authors: square crop, Lanczos 512²), and its
posterior sample reuses the content's VAE noise (same streams), so an exemplar equal to the content encodes to
the content's latent. AdaIN follows the authors' code: per channel over space, no ε.

Memory. Only content Q and exemplar K, V are cached, in the UNet's dtype, for the sampling steps only: on
SD-1.5 at 512² that is 3 × 50 × (3·1024·640 + 3·4096·320) values ≈ 3.3 GiB in fp32 (1.65 GiB in fp16), on
top of the models and the UNet's own activations (the authors keep Q, K, V of both images: twice as many values).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler
from PIL import Image

from sms.attention_injection import InjectionState, installed, self_attention_layers
from sms.config import ConfigError
from sms.image_tensors import image_to_tensor
from sms.images import centre_crop
from sms.loop import encode
from sms.sampling import DiffusionStylizer, Phases, SamplingGrid, invert, sample
from sms.stylizer import stylizers


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Initial latent AdaIN (StyleID §4): σ(z_s)·(z_c − μ(z_c))/σ(z_c) + μ(z_s), statistics per channel over batch
    and space, no ε (the authors' code)."""
    dims = (0, 2, 3)
    c_mean, c_std = content.mean(dims, keepdim=True), content.std(dims, keepdim=True)
    s_mean, s_std = style.mean(dims, keepdim=True), style.std(dims, keepdim=True)
    return (content - c_mean) / c_std * s_std + s_mean


def exemplar_tensor(exemplar: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """The exemplar as the VAE's input at ``size`` = (W, H): centre crop to that aspect, then resize."""
    return image_to_tensor(centre_crop(exemplar.convert("RGB"), size[0] / size[1]), size)


def grids(scheduler, num_steps: int, t999_start: bool) -> tuple[SamplingGrid, SamplingGrid]:
    """(inversion grid, sampling grid), both in sampling order; see the module docstring for ``t999_start``."""
    grid = SamplingGrid.from_scheduler(scheduler, num_steps)
    if not t999_start:
        return grid, grid
    last = scheduler.config.num_train_timesteps - 1
    alpha_last = float(DDIMScheduler.from_config(scheduler.config).alphas_cumprod.double()[last])
    inversion = SamplingGrid((last, *grid.timesteps), (alpha_last, *grid.alpha_bars), grid.final_alpha_bar)
    return inversion, SamplingGrid(grid.timesteps[1:], grid.alpha_bars[1:], grid.final_alpha_bar)


@dataclass
class StyleIDConfig:
    gamma: float = 0.75              # query preservation γ: 1 keeps the content's query, 0 the stylised latent's
    temperature: float = 1.5         # attention temperature T: logits × T in the injected layers
    steps: int = 50                  # DDIM steps of the shared grid
    up_blocks: tuple[int, ...] | None = None   # decoder blocks whose attn1 is injected; None: last two with attention
    t999_start: bool = False         # the authors' quirk: invert onto t = 999, sample 49 steps from 961

    def __post_init__(self):
        if self.up_blocks is not None:
            self.up_blocks = tuple(self.up_blocks)
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"StyleID gamma={self.gamma} is outside [0, 1]: it weighs the content's query "
                              "against the stylised latent's (0.75 official, 0.3 for a stronger style).")
        if not self.temperature > 0:
            raise ConfigError(f"StyleID temperature={self.temperature} must be positive (1 = plain attention, "
                              "1.5 official).")
        if self.steps < 1 + int(self.t999_start):
            raise ConfigError(f"StyleID steps={self.steps} is too few: at least 1 (2 with t999_start).")


@stylizers.register("styleid")
class StyleID(DiffusionStylizer):
    """StyleID on the suite's SD stack (base network only).

    Profiles:
    - ``official`` (default) — γ 0.75, T 1.5, 50 steps, one grid for inversion and sampling;
    - ``official_t999`` — the same with the authors' t = 999 start (module docstring);
    - ``strong`` — γ 0.3, the authors' setting for a stronger style.
    """

    Config = StyleIDConfig
    default_profile = "official"
    profiles = {
        "official": {"method": {"gamma": 0.75, "temperature": 1.5, "steps": 50}},
        "official_t999": {"method": {"gamma": 0.75, "temperature": 1.5, "steps": 50, "t999_start": True}},
        "strong": {"method": {"gamma": 0.3, "temperature": 1.5, "steps": 50}},
    }
    style_inputs = ("exemplar",)

    @classmethod
    def expected_unet_forwards(cls, config: StyleIDConfig, run) -> int:
        quirk = int(config.t999_start)
        return 2 * (config.steps + quirk) + (config.steps - quirk)

    def steps(self) -> int:
        return self.config.steps - int(self.config.t999_start)

    def generate(self, image: Image.Image, image_id: str, streams, exemplar: Image.Image | None,
                 phases: Phases, progress: bool) -> tuple[torch.Tensor, dict]:
        if exemplar is None:
            raise ValueError("StyleID transfers the style of an exemplar image and was given none: name the style "
                             "image (or a folder of them) as the style's `exemplar:` in params.yaml, or --exemplar.")
        config, models = self.config, self.models
        layers = self_attention_layers(models.unet, config.up_blocks)
        inversion_grid, sampling_grid = grids(models.scheduler, config.steps, config.t999_start)
        with phases("encoding"):
            content = self.working_tensor(image)
            style = exemplar_tensor(exemplar, (content.shape[-1], content.shape[-2]))
            z_c, z_s = encode(models, torch.cat([content, style]), [streams, streams], "sample").split(1)
        empty = self.embed("")
        # rows of the inversion batch: 0 = content (its Q is kept), 1 = exemplar (its K, V)
        state = InjectionState(config.gamma, config.temperature, keep={"q": 0, "k": 1, "v": 1},
                               steps=frozenset(sampling_grid.timesteps))

        def eps(z: torch.Tensor, t: int, mode) -> torch.Tensor:
            with mode(t):
                return models.denoisers.real(z, torch.tensor(t, device=z.device), empty.expand(len(z), -1, -1))

        with installed(models.unet, layers, state):
            with phases("inversion"):
                z_t = invert(lambda z, t, i: eps(z, t, state.capturing), torch.cat([z_c, z_s]), inversion_grid,
                             progress=progress, desc="StyleID inversion")[0]
            with phases("sampling"):
                z0 = sample(lambda z, t, i: eps(z, t, state.injecting), adain(z_t[:1], z_t[1:]), sampling_grid,
                            progress=progress, desc="StyleID sampling")
        record = {"styleid": {"injected_layers": layers, "gamma": config.gamma, "temperature": config.temperature,
                              "inversion_steps": len(inversion_grid), "sampling_steps": len(sampling_grid),
                              "t999_start": config.t999_start, "feature_cache_bytes": state.bank.nbytes}}
        state.bank.clear()
        return z0, record
