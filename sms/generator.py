"""G_θ, the feed-forward generator of Algorithm 1 (issue 14): z_tgt = G_θ(z_src) = z_src + U_θ(z_src).

U_θ is a diffusers ``UNet2DModel`` built from a config (no text, no timestep: it is always called at t = 0)
whose output convolution starts at zero, so at step 0 G is exactly the identity: the paper's
"reconstruction warm-up" in its exact form (zero-initialised residual, as ControlNet's zero convolutions).

Architecture (the paper publishes only the size, ~43 MB): ``DEFAULT`` is a 3-level latent UNet,
64/128/256 channels, one ResNet block per level, self-attention at the lowest (1/4) resolution:
10.9 M parameters = 43.7 MB in fp32. ``TINY`` (8/16 channels, no attention) is for tests and the demo.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel


@dataclass(frozen=True)
class GeneratorConfig:
    block_out_channels: tuple[int, ...] = (64, 128, 256)
    layers_per_block: int = 1
    attention: bool = True          # self-attention in the lowest-resolution down/up blocks
    norm_num_groups: int = 32
    latent_channels: int = 4

    def unet_config(self) -> dict:
        """The ``UNet2DModel`` keyword arguments of this config."""
        levels = len(self.block_out_channels)
        low_down, low_up = ("AttnDownBlock2D", "AttnUpBlock2D") if self.attention else ("DownBlock2D", "UpBlock2D")
        return {"in_channels": self.latent_channels, "out_channels": self.latent_channels,
                "block_out_channels": self.block_out_channels, "layers_per_block": self.layers_per_block,
                "down_block_types": ("DownBlock2D",) * (levels - 1) + (low_down,),
                "up_block_types": (low_up,) + ("UpBlock2D",) * (levels - 1),
                "norm_num_groups": self.norm_num_groups}

    @property
    def multiple(self) -> int:
        """Latent sides are padded to a multiple of 2^(levels − 1), the UNet's total downsampling."""
        return 2 ** (len(self.block_out_channels) - 1)


DEFAULT = GeneratorConfig()
TINY = GeneratorConfig(block_out_channels=(8, 16), attention=False, norm_num_groups=4)


def pad_to_multiple(z: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right so both sides divide by ``multiple`` (crop back with [..., :h, :w])."""
    h, w = z.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    return F.pad(z, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else z


class LatentGenerator(torch.nn.Module):
    """z ↦ z + U_θ(z), U_θ's output layer zero at initialisation (G_θ ≡ identity at step 0, exactly)."""

    def __init__(self, config: GeneratorConfig = DEFAULT, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.unet = UNet2DModel(**config.unet_config())
        if generator is not None:
            self.reinitialise(generator)
        zero_output_layer(self.unet)

    @torch.no_grad()
    def reinitialise(self, generator: torch.Generator) -> None:
        """PyTorch's default init of every conv/linear (weight Kaiming-uniform a = √5, bias U(±1/√fan_in)),
        drawn from ``generator``, so θ₀ depends only on the run's seed and not on the global RNG."""
        for module in self.unet.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1.0 / module.weight[0].numel() ** 0.5
                    torch.nn.init.uniform_(module.bias, -bound, bound, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        residual = self.unet(pad_to_multiple(z, self.config.multiple), 0).sample[..., :h, :w]
        return z + residual

    def describe(self) -> dict:
        """Config and size, for a run's sidecar."""
        parameters = sum(p.numel() for p in self.parameters())
        return {"config": asdict(self.config), "parameters": parameters, "fp32_megabytes": parameters * 4 / 1e6}


@torch.no_grad()
def zero_output_layer(unet: UNet2DModel) -> None:
    unet.conv_out.weight.zero_()
    unet.conv_out.bias.zero_()
