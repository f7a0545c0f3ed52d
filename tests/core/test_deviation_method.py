"""sms.deviations.SUITE_CHANGES inside the method and its loop, each measured on the tiny models
(``test_row_<id>``; tests/core/test_deviations.py checks that every row has one)."""
import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F
from deviation_support import PROMPTS, latents, psnr, relative, smooth_image, sms_gradients, trained_sms
from PIL import Image

from baselines.dds import DDSConfig, DeltaDenoisingScore
from sms.config import LoopConfig, RunConfig, resolve
from sms.identity import build_identity_loss
from sms.loop import distillation_loss, gradient_scale, make_optimizer, stylize_image
from sms.method import StepState, count_nonfinite
from sms.models import ModelSpec, load_stack
from sms.refine import relevance_map
from sms.rng import RandomStreams
from sms.spectrum import progressive_threshold
from sms.style_matching import SMSConfig, StyleMatchingScore


def _release_psr(z: torch.Tensor, z_src: torch.Tensor, t: int) -> torch.Tensor:
    """sms.py's PSR, transcribed: h = w = the width, int(t/500·(h + w − 2)), low_pass's assert, L1 mean."""
    true_h, w = z.shape[-2:]
    k = int(t / 500 * (w + w - 2))
    assert k <= true_h + w - 2, "invalid value of threshold"
    mask = torch.from_numpy(np.add.outer(np.arange(true_h), np.arange(w)) <= k)
    dct_z, dct_src = (torch.from_numpy(scipy.fft.dctn(x.double().numpy(), axes=(-2, -1), norm="ortho"))
                      for x in (z, z_src))
    return (mask * dct_z - mask * dct_src).abs().mean().float()


def test_row_psr_true_sides():
    z, z_src = latents((1, 4, 12, 8))  # portrait: h = 12 > w = 8
    suite, release = build_identity_loss("psr"), build_identity_loss("psr", sides="ww")
    assert (progressive_threshold(101, 12, 8), int(101 / 500 * 14)) == (3, 2)
    assert 0.4 < float(release(z, z_src, 101) / suite(z, z_src, 101)) < 0.75  # measured 0.58
    for t in (21, 101, 251, 401, 499):  # the option is the release's PSR
        assert torch.allclose(release(z, z_src, t), _release_psr(z, z_src, t), rtol=1e-5)
    landscape, landscape_src = z.transpose(-1, -2), z_src.transpose(-1, -2)
    assert torch.allclose(release(landscape, landscape_src, 431), _release_psr(landscape, landscape_src, 431), rtol=1e-5)
    with pytest.raises(AssertionError):
        _release_psr(landscape, landscape_src, 433)
    with pytest.raises(ValueError, match="assert"):
        release(landscape, landscape_src, 433)
    assert torch.isfinite(suite(landscape, landscape_src, 499))


def test_row_no_wasted_uncond():
    forwards, fake = {}, {}
    for execution in ("reference", "batched"):
        method, streams = trained_sms(load_stack(ModelSpec()), execution=execution)
        z, z_src = latents()
        spent = method.gradient(StepState(3, 500, z, z_src, streams)).forwards
        forwards[execution] = spent + method.update(StepState(3, 500, z, z_src, streams))["forwards"]
        fake[execution] = torch.cat([param.detach().flatten() for param in method.trainer.parameters])
    assert forwards == {"reference": 8, "batched": 7}
    assert 0 < relative([fake["batched"]], [fake["reference"]]) < 1e-4  # measured 8e-7


def test_row_no_relevance_graph(tiny_stack):
    method = StyleMatchingScore(SMSConfig(), tiny_stack, PROMPTS)
    z, z_src = latents()
    saved_bytes, edits = {}, {}
    for name, passes in (("release", method._reference_passes), ("suite", method._passes)):
        sizes = []

        def pack(tensor, sizes=sizes):
            sizes.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.no_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            edits[name] = passes(z, z_src, torch.tensor(301))[2]
        saved_bytes[name] = sum(sizes)
    assert saved_bytes["suite"] == 0 and saved_bytes["release"] > 1e6  # measured 5.4 MB
    assert (relevance_map(edits["suite"]) - relevance_map(edits["release"])).abs().max() < 1e-4


def _adamw_with_one_inf(clean, loss) -> tuple[float, float]:
    """20 AdamW steps on z = 0 with random g, g[0] = inf at the first: (movement of that entry after the first
    step, mean movement of the others)."""
    loop = LoopConfig(schedule="constant")
    z = torch.zeros(1, 4, 8, 8, requires_grad=True)
    optimizer, _ = make_optimizer(z, loop)
    generator = torch.Generator().manual_seed(0)
    snapshots = []
    for step in range(20):
        g = torch.randn(z.shape, generator=generator)
        if step == 0:
            g[0, 0, 0, 0] = float("inf")
        optimizer.zero_grad()
        loss(z, clean(g)).backward()
        optimizer.step()
        snapshots.append(z.detach().clone())
    moved = (snapshots[-1] - snapshots[0]).abs()
    return float(moved[0, 0, 0, 0]), float(moved.flatten()[1:].mean())


def test_row_nonfinite_zeroed():
    g = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    cleaned, count = count_nonfinite(g)
    assert cleaned.tolist() == [1.0, 0.0, 0.0, 0.0] and count == 3
    assert torch.nan_to_num(g)[2] == torch.finfo(torch.float32).max
    release = _adamw_with_one_inf(torch.nan_to_num, lambda z, g: 0.5 * F.mse_loss(z, (z - g).detach()))
    suite = _adamw_with_one_inf(lambda g: count_nonfinite(g)[0],
                                lambda z, g: distillation_loss(z, g, gradient_scale(LoopConfig(), z)))
    assert release[0] == 0.0 and release[1] > 0.1  # Adam's second moment overflowed: the entry is frozen
    assert suite[0] > 0.1 and abs(suite[1] - release[1]) < 0.05


def test_row_shared_unet_adapters():
    adapters, merged_copy = sms_gradients(), sms_gradients(style_base="tiny:0")  # tiny:0: the base's weights
    assert 0 < relative(adapters, merged_copy) < 2e-4  # measured 6e-5


def test_row_fake_reinit(monkeypatch):
    stack = load_stack(ModelSpec())
    initial = [param.detach().clone() for param in stack.denoisers.fake_parameters()]
    run = resolve(RunConfig(prompts=PROMPTS, loop_overrides={"iters": 4, "resolution": 64}))

    def image_b(after_a: bool) -> Image.Image:
        for param, value in zip(stack.denoisers.fake_parameters(), initial):
            param.data.copy_(value)
        if after_a:
            stylize_image(smooth_image(seed=1), "a", stack, run, progress=False)
        return stylize_image(smooth_image(seed=2), "b", stack, run, progress=False).image

    assert image_b(False).tobytes() == image_b(True).tobytes()
    monkeypatch.setattr(StyleMatchingScore, "begin", lambda self, streams: None)
    alone, after = image_b(False), image_b(True)
    assert alone.tobytes() != after.tobytes() and psnr(alone, after) < 80  # measured 51 dB


def test_row_seeded_streams(tiny_stack):
    sms = StyleMatchingScore(SMSConfig(), tiny_stack, PROMPTS)
    dds = DeltaDenoisingScore(DDSConfig(), tiny_stack, PROMPTS)
    z, z_src = latents()

    def draws(method, seed):
        states = [StepState(step, 500, z, z_src, RandomStreams(seed, "img")) for step in range(8)]
        return [method.draw_timestep(state).t for state in states], [method.draw_noise(state) for state in states]

    (sms_t, sms_eps), (dds_t, dds_eps), (other_t, _) = draws(sms, 0), draws(dds, 0), draws(sms, 1)
    assert sms_t == dds_t and all(torch.equal(a, b) for a, b in zip(sms_eps, dds_eps))
    assert sms_t != other_t
