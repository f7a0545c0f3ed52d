"""Identity (content-preservation) losses on latents, by name (supplement E.1)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sms.registry import Registry
from sms.spectrum import fixed_threshold, progressive_threshold, release_threshold, spectrum_loss

identity_losses: Registry = Registry("identity loss")


class IdentityLoss:
    """loss(z, z_src, t) → scalar, zero at z = z_src; the loop multiplies it by λ."""

    def __call__(self, z: torch.Tensor, z_src: torch.Tensor, t: int) -> torch.Tensor:
        raise NotImplementedError


@identity_losses.register("none")
@dataclass
class NoIdentity(IdentityLoss):
    def __call__(self, z, z_src, t):
        return z.new_zeros(())


@identity_losses.register("latent_mse")
@dataclass
class LatentMSE(IdentityLoss):
    """mean (z − z_src)²: uniform regularisation, as in PDS."""

    def __call__(self, z, z_src, t):
        return (z - z_src).square().mean()


@identity_losses.register("psr")
@dataclass
class ProgressiveSpectrum(IdentityLoss):
    """PSR (spec §6): DCT low-pass with k = ⌊t/500·(h + w − 2)⌋, L1 by default.

    ``sides="ww"`` reproduces the release's threshold, computed with the width for both sides
    (sms.deviations: ``psr_true_sides``)."""

    norm: str = "l1"
    sides: str = "hw"

    def __call__(self, z, z_src, t):
        thresholds = {"hw": progressive_threshold, "ww": release_threshold}
        if self.sides not in thresholds:
            raise ValueError(f"unknown PSR sides {self.sides!r}; use 'hw' (true h and w) or 'ww' (the release's)")
        return spectrum_loss(z, z_src, thresholds[self.sides](t, z.shape[-2], z.shape[-1]), self.norm)


@identity_losses.register("psr_fixed")
@dataclass
class FixedSpectrum(IdentityLoss):
    """Supplement variant: a fixed DCT low-pass, k = ⌊0.3·(h + w − 2)⌋."""

    ratio: float = 0.3
    norm: str = "l1"

    def __call__(self, z, z_src, t):
        return spectrum_loss(z, z_src, fixed_threshold(z.shape[-2], z.shape[-1], self.ratio), self.norm)


@identity_losses.register("fft_lowpass")
@dataclass
class FFTLowPass(IdentityLoss):
    """The FFT variant of PSR: L1 on centred-FFT coefficients inside a radius that grows with t."""

    def __call__(self, z, z_src, t):
        h, w = z.shape[-2:]
        fy = torch.fft.fftfreq(h, device=z.device).abs().view(-1, 1)
        fx = torch.fft.fftfreq(w, device=z.device).abs().view(1, -1)
        mask = ((fy + fx) <= t / 500 * 1.0).to(z.dtype)
        difference = torch.fft.fft2(z - z_src, norm="ortho") * mask
        return difference.abs().mean()


def unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """LPIPS's per-position channel normalisation f/‖f‖₂ (Zhang et al. 2018, eq. 1)."""
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + eps)


def shared_flip_rotate_shift(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
                             max_shift: float = 0.125) -> tuple[torch.Tensor, torch.Tensor]:
    """One random x-flip, 90° rotation and integer translation (≤ 12.5 % of the side), the same for a and b.

    The geometric "b" subset of the ADA augmentations E-LatentLPIPS ensembles over; translation wraps
    around (torch.roll) where ADA pads by reflection."""
    flip, quarter = int(torch.randint(2, (1,), generator=generator)), int(torch.randint(4, (1,), generator=generator))
    h, w = a.shape[-2:]
    offsets = (torch.rand(2, generator=generator) * 2 - 1) * max_shift * torch.tensor([h, w])
    shift = tuple(int(v) for v in offsets.round())

    def apply(x: torch.Tensor) -> torch.Tensor:
        x = x.flip(-1) if flip else x
        return torch.roll(torch.rot90(x, quarter, dims=(-2, -1)), shifts=shift, dims=(-2, -1))

    return apply(a), apply(b)


class LatentPerceptual(IdentityLoss):
    """LPIPS form on latents (Kang et al. 2024): Σ_l mean_hw head_l((n(f_l(z)) − n(f_l(z_src)))²) + mean|z − z_src|.

    Subclasses set ``self.trunk`` (latent → list of feature maps) and ``self.heads`` (one 1×1 map per
    layer) in ``__post_init__``; ``augment`` draws one shared geometric augmentation per call from a
    generator seeded by ``seed`` (a new loss per image ⇒ reproducible runs)."""

    trunk: nn.Module
    heads: nn.ModuleList

    def _setup(self, seed: int) -> None:
        self.trunk.requires_grad_(False).eval()
        self.heads.requires_grad_(False).eval()
        self._generator = torch.Generator().manual_seed(seed)

    def __call__(self, z, z_src, t):
        a, b = (z, z_src) if not self.augment else shared_flip_rotate_shift(z, z_src, self._generator)
        self.trunk.to(z.device, z.dtype)
        self.heads.to(z.device, z.dtype)
        total = (z - z_src).abs().mean() if self.l1 else z.new_zeros(())
        for head, fa, fb in zip(self.heads, self.trunk(a), self.trunk(b)):
            total = total + head((unit_normalize(fa) - unit_normalize(fb)).square()).mean()
        return total


class _Slices(nn.Module):
    """A feature trunk cut into named slices ``slice1 … sliceN``; forward returns every slice's output."""

    def __init__(self, slices: list[nn.Sequential]):
        super().__init__()
        self.names = [f"slice{k + 1}" for k in range(len(slices))]
        for name, part in zip(self.names, slices):
            self.add_module(name, part)

    def forward(self, x):
        outputs = []
        for name in self.names:
            x = getattr(self, name)(x)
            outputs.append(x)
        return outputs


class _Head(nn.Module):
    """LPIPS ``NetLinLayer``: dropout (inactive in eval) + 1×1 conv without bias, keys ``model.1.weight``."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x):
        return self.model(x)


ELATENTLPIPS_SLICES = ((0, 7), (7, 14), (14, 24), (24, 34), (34, 44))
ELATENTLPIPS_CHANNELS = (64, 128, 256, 512, 512)
ELATENTLPIPS_LICENCE = ("E-LatentLPIPS weights are CC-BY-NC (non-commercial; github.com/mingukkang/elatentlpips): "
                        "the suite does not ship or download them")


def latent_vgg16_bn(channels: int = 4) -> _Slices:
    """VGG16-BN features with a ``channels``-input first conv and the first three max-pools removed."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=True)
    features[0] = nn.Conv2d(channels, 64, kernel_size=3, padding=1)
    for index in [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)][:3]:
        features[index] = nn.Identity()
    return _Slices([nn.Sequential(OrderedDict((str(i), features[i]) for i in range(lo, hi)))
                    for lo, hi in ELATENTLPIPS_SLICES])


def load_elatentlpips_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tuned checkpoint (``sd15_latest_vgg16_tuned.pth``, or a .safetensors copy) as ``net.*``/``lins.*`` keys."""
    path = Path(path).expanduser()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("lin") and not key.startswith("lins."):   # lin0.* duplicates lins.0.* in the package
            key = f"lins.{key[3:]}"
        if not key.startswith("augment."):
            renamed[key] = value
    return renamed


@identity_losses.register("elatentlpips")
@dataclass(eq=False)
class ELatentLPIPS(LatentPerceptual):
    """E-LatentLPIPS (Kang et al., "Distilling Diffusion Models into Conditional GANs", ECCV 2024) for SD-1.5
    latents, from a LOCAL checkpoint given as ``identity_options={"weights": PATH}``.

    Licence: the weights are CC-BY-NC (non-commercial use only); users supply them. The PyPI package
    ``elatentlpips`` downloads them from a hub when constructed, so the suite rebuilds the network (latent
    VGG16-BN trunk, 5 LPIPS heads, + L1 term) and loads the file itself. Inputs are SMS's latents, already
    × 0.18215 (the package's ``normalize=False``). ``augment``: the geometric "b" subset of its ensembling.
    """

    weights: str | None = None
    augment: bool = True
    l1: bool = True
    seed: int = 0

    def __post_init__(self):
        if not self.weights or not Path(self.weights).expanduser().is_file():
            raise FileNotFoundError(
                f"identity loss 'elatentlpips' needs a local weights file (identity_options={{'weights': PATH}}, "
                f"e.g. sd15_latest_vgg16_tuned.pth); got {self.weights!r}. {ELATENTLPIPS_LICENCE}.")
        self.trunk = latent_vgg16_bn(4)
        self.heads = nn.ModuleList(_Head(c) for c in ELATENTLPIPS_CHANNELS)
        holder = nn.Module()
        holder.net, holder.lins = self.trunk, self.heads
        holder.load_state_dict(load_elatentlpips_state(self.weights), strict=True)
        self._setup(self.seed)


@identity_losses.register("latent_perceptual_standin")
@dataclass(eq=False)
class LatentPerceptualStandIn(LatentPerceptual):
    """Weight-free stand-in with E-LatentLPIPS's interface (tests, demos): a fixed random conv trunk on the
    4-channel latent (seeded), channel-mean heads, the same normalisation, augmentation and L1 term."""

    augment: bool = True
    l1: bool = True
    seed: int = 0
    widths: tuple[int, ...] = (16, 32, 64)

    def __post_init__(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            channels = (4, *self.widths)
            self.trunk = _Slices([nn.Sequential(nn.Conv2d(cin, cout, 3, stride=1 if k == 0 else 2, padding=1), nn.ReLU())
                                  for k, (cin, cout) in enumerate(zip(channels, channels[1:]))])
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.widths)
        for head, width in zip(self.heads, self.widths):
            nn.init.constant_(head.weight, 1.0 / width)
        self._setup(self.seed)


def build_identity_loss(name: str, **options) -> IdentityLoss:
    return identity_losses.get(name)(**options)
