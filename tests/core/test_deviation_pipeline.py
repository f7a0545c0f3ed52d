"""sms.deviations.SUITE_CHANGES around the method (weights, prompts, images in and out), each measured on the
tiny models (``test_row_<id>``); where an option reproduces the release, it is checked against a
transcription of the release's code."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deviation_support import latents, psnr, relative, smooth_image, sms_gradients
from diffusers import DDIMScheduler
from PIL import Image
from safetensors.torch import load_file

import baselines.sds  # noqa: F401  (registers "sds": the image-path tests need a method that trains nothing)
from sms.config import RunConfig, resolve
from sms.diffusion import ddim_grid
from sms.image_tensors import (
    image_to_tensor,
    input_tensor,
    release_saved_image,
    release_working_size,
    tensor_to_image,
    working_size,
)
from sms.loop import decode, encode, stylize_image
from sms.method import Prompts, StepState
from sms.models import ModelSpec, load_stack
from sms.models.configs import sd15_scheduler_config
from sms.models.loading import _components_of
from sms.models.tiny import build_tiny_unet
from sms.rng import RandomStreams
from sms.style_matching import SMSConfig, StyleMatchingScore


def test_row_fp16_lora_merge():
    shared = relative(sms_gradients(release_lora_merge=True), sms_gradients())
    own_base = relative(sms_gradients("tiny:1", release_lora_merge=True), sms_gradients("tiny:1"))
    assert 1e-4 < shared < 1e-2 and 1e-5 < own_base < 1e-3  # measured 5.4e-4 and 4.0e-5
    # a shared base gets the release's deep copy: the same g as a separate copy of the base's weights
    assert relative(sms_gradients(release_lora_merge=True), sms_gradients("tiny:0", release_lora_merge=True)) == 0


def test_fp16_lora_merge_option_is_the_releases_merge():
    """sms.py load_lora_weights_civitai: W += 0.8·(alpha/rank)·mm(up₁₆, down₁₆), into a copy of the UNet."""
    stack = load_stack(ModelSpec(release_lora_merge=True, with_fake=False))
    assert not stack.denoisers.shared
    original, merged = dict(build_tiny_unet().named_modules()), dict(stack.denoisers.style_unet.named_modules())
    by_kohya_name = {name.replace(".", "_"): name for name in original}
    lora = load_file(stack.style_lora_path)
    layers = [key[len("lora_unet_"):-len(".lora_down.weight")] for key in lora
              if key.startswith("lora_unet_") and key.endswith(".lora_down.weight")]
    for layer in layers:
        up, down = lora[f"lora_unet_{layer}.lora_up.weight"], lora[f"lora_unet_{layer}.lora_down.weight"]
        alpha = lora[f"lora_unet_{layer}.alpha"].item() / up.shape[1]
        name = by_kohya_name[layer]
        expected = original[name].weight + 0.8 * alpha * torch.mm(up.half(), down.half())
        assert torch.equal(merged[name].weight, expected), name
        assert torch.equal(dict(stack.unet.named_modules())[name].weight, original[name].weight)  # real untouched
    assert len(layers) > 10


def _release_input(image: Image.Image, short_side: int) -> torch.Tensor:
    """stylize.py prepare_latent, transcribed: pil_to_tensor, (int(h·scale), int(w·scale)), bilinear."""
    x = torch.from_numpy((np.array(image).astype(np.float32) / 255.0)[None].transpose(0, 3, 1, 2))
    h, w = x.shape[-2:]
    scale = short_side / min(h, w)
    return F.interpolate(x, (int(h * scale), int(w * scale)), mode="bilinear")


def test_row_input_resize(tiny_stack):
    assert (working_size(500, 375, 512), release_working_size(500, 375, 512)) == ((680, 512), (682, 512))
    image = smooth_image(128, 96)
    suite, release = input_tensor(image, 64), input_tensor(image, 64, "release")
    assert torch.equal(release, _release_input(image, 64))  # the option is the release's resize
    assert (suite.shape[-1], release.shape[-1]) == (88, 85)
    antialias_effect = float((image_to_tensor(image, (85, 64)) - release).abs().mean())
    assert 2e-4 < antialias_effect < 1e-2  # measured 8.8e-4
    shapes = [encode(tiny_stack, x, RandomStreams(0, "in"), "mean").shape[-2:] for x in (suite, release)]
    assert shapes == [(8, 11), (8, 10)]  # the release's VAE drops the odd pixels
    seen = []
    run = resolve(RunConfig(method="sds", loop_overrides={"iters": 1, "resolution": 64, "input_resize": "release"}))
    result = stylize_image(image, "in", tiny_stack, run, progress=False, on_step=lambda step, z: seen.append(z.shape))
    assert seen == [(1, 4, 8, 10)] and result.image.size == image.size


def _release_saved(x: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """stylize.py's saved result, transcribed: decode_latent's clamp, tensor_to_pil, resize_image(…, 256), then
    .resize(source size), with Pillow's default filters."""
    preview = Image.fromarray((x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    w, h = preview.size
    short = min(w, h)
    return preview.resize((int(w * 256 / short), int(h * 256 / short))).resize(size)


def test_row_output_image(tiny_stack):
    source = smooth_image()
    x = decode(tiny_stack, encode(tiny_stack, input_tensor(source, 64), RandomStreams(0, "out"), "sample"))
    reference = x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0
    suite_db, release_db = psnr(reference, tensor_to_image(x, source.size)), psnr(reference, release_saved_image(x, source.size))
    assert suite_db > 55 and release_db < suite_db - 15  # measured 59.0 vs 32.4 dB
    latents_at = {}
    run = resolve(RunConfig(method="sds", loop_overrides={"iters": 60, "resolution": 64, "output_image": "release"}))
    result = stylize_image(source, "out", tiny_stack, run, progress=False,
                           on_step=lambda step, z: latents_at.__setitem__(step, z.clone()))
    saved = {step: _release_saved(decode(tiny_stack, latents_at[step]), source.size).tobytes() for step in (49, 59)}
    assert result.image.tobytes() == saved[49] != saved[59]  # the last 50-step preview, not the final latent
    short = resolve(RunConfig(method="sds", loop_overrides={"iters": 10, "resolution": 64, "output_image": "release"}))
    with pytest.raises(ValueError, match="iters ≥ 50"):
        stylize_image(source, "out", tiny_stack, short, progress=False)


def test_row_empty_caption(tiny_stack):
    style = "watercolor style"
    suite, release = Prompts(style).target, f"{style}, {''}"  # stylize.py: f"{style_prompt}, {image_prompt}"
    assert (suite, release) == ("watercolor style", "watercolor style, ")
    ids = tiny_stack.tokenizer([suite, release]).input_ids
    assert len(ids[1]) == len(ids[0]) + 1
    embeddings = tiny_stack.embed([suite, release])
    assert 0.03 < relative([embeddings[1]], [embeddings[0]]) < 0.3  # measured 0.10
    method = StyleMatchingScore(SMSConfig(), tiny_stack, Prompts(style))
    z, z_src = latents()
    g_suite = method.gradient(StepState(5, 500, z, z_src, RandomStreams(0, "caption"))).g
    method.cond.target = embeddings[1:]
    g_release = method.gradient(StepState(5, 500, z, z_src, RandomStreams(0, "caption"))).g
    assert 0.05 < relative([g_release], [g_suite]) < 1.0  # measured 0.22


def _grids(change: dict):
    """(the checkpoint's own grid, the suite's) for a checkpoint whose scheduler config carries ``change``."""
    own = DDIMScheduler.from_config({**sd15_scheduler_config(), **change})
    pipe = SimpleNamespace(scheduler=own, tokenizer=None, text_encoder=None, vae=None, unet=None)
    suite = _components_of(pipe, "checkpoint").scheduler
    return own, suite


def test_row_scheduler_config():
    spec_grid = list(range(1, 1000, 2))
    for change, moved in (({"timestep_spacing": "linspace"}, 250), ({"timestep_spacing": "trailing"}, 0)):
        own, suite = _grids(change)
        assert ddim_grid(suite).tolist() == spec_grid
        assert int((ddim_grid(own) != ddim_grid(suite)).sum()) == moved, change
    own, suite = _grids({"rescale_betas_zero_snr": True})
    assert float(own.alphas_cumprod[999]) == 0 and abs(float(suite.alphas_cumprod[999]) - 0.00466) < 1e-5
