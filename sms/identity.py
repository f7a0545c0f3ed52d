"""Identity (content-preservation) losses on latents, by name (supplement E.1)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sms.registry import Registry
from sms.spectrum import fixed_threshold, progressive_threshold, spectrum_loss

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
    """PSR (spec §6): DCT low-pass with k = ⌊t/500·(h + w − 2)⌋, L1 by default."""

    norm: str = "l1"

    def __call__(self, z, z_src, t):
        return spectrum_loss(z, z_src, progressive_threshold(t, z.shape[-2], z.shape[-1]), self.norm)


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


def build_identity_loss(name: str, **options) -> IdentityLoss:
    return identity_losses.get(name)(**options)
