"""Identity losses: zero at z = z_src, positive elsewhere, differentiable; E-LatentLPIPS loads local weights only."""
from __future__ import annotations

import pytest
import torch

from sms.identity import build_identity_loss, identity_losses

NEEDS_WEIGHTS = {"elatentlpips"}
T = 201


@pytest.fixture(scope="module")
def latents():
    generator = torch.Generator().manual_seed(11)
    return torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)


def check_identity(loss, z_src, z):
    assert float(loss(z_src.clone(), z_src, T)) == 0.0
    z = z.clone().requires_grad_(True)
    value = loss(z, z_src, T)
    assert value.ndim == 0 and float(value.detach()) > 0
    value.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", [n for n in identity_losses.names() if n not in NEEDS_WEIGHTS | {"none"}])
def test_identity_zero_at_source_positive_elsewhere(name, latents):
    z_src, z = latents
    check_identity(build_identity_loss(name), z_src, z_src + 0.3 * z)


def test_none_is_zero(latents):
    assert float(build_identity_loss("none")(latents[1], latents[0], T)) == 0.0


def test_standin_is_seeded_and_reproducible(latents):
    z_src, z = latents
    first = [float(build_identity_loss("latent_perceptual_standin", seed=1)(z, z_src, T)) for _ in range(2)]
    second = [float(build_identity_loss("latent_perceptual_standin", seed=1)(z, z_src, T)) for _ in range(2)]
    assert first == second
    plain = build_identity_loss("latent_perceptual_standin", augment=False, l1=False)
    assert float(plain(z, z_src, T)) == float(plain(z, z_src, T)) > 0


def test_elatentlpips_without_weights_names_the_licence():
    with pytest.raises(FileNotFoundError, match="CC-BY-NC"):
        build_identity_loss("elatentlpips")
    with pytest.raises(FileNotFoundError, match="weights"):
        build_identity_loss("elatentlpips", weights="/nonexistent/sd15_latest_vgg16_tuned.pth")


def write_package_layout_checkpoint(path):
    """Random weights with the key layout of the package's ELatentLPIPS state dict (net.sliceK.i.*, lin/lins)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"], batch_norm=True)
    features[0] = torch.nn.Conv2d(4, 64, 3, padding=1)
    state = {}
    for k, (lo, hi) in enumerate([(0, 7), (7, 14), (14, 24), (24, 34), (34, 44)], start=1):
        for i in range(lo, hi):
            state.update({f"net.slice{k}.{i}.{key}": v for key, v in features[i].state_dict().items()})
    for k, channels in enumerate([64, 128, 256, 512, 512]):
        weight = torch.rand(1, channels, 1, 1) * 0.1
        state[f"lin{k}.model.1.weight"] = state[f"lins.{k}.model.1.weight"] = weight.clone()
    torch.save(state, path)


def test_elatentlpips_loads_a_local_checkpoint(tmp_path, latents):
    path = tmp_path / "sd15_latest_vgg16_tuned.pth"
    write_package_layout_checkpoint(path)
    loss = build_identity_loss("elatentlpips", weights=str(path))
    z_src, z = latents
    check_identity(loss, z_src, z_src + 0.3 * z)
