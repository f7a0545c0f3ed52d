"""Style-LoRA (SDEdit) and Style-LoRA + ControlNet on the tiny models: strength → steps and rows (hook-counted),
the style network in use, the ControlNet's condition reaching the UNet, ControlNet files (diffusers folder, single
files in both layouts, truncated, missing, mismatched), the canny condition, and the runner's PNG + sidecar."""
from __future__ import annotations

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import ControlNetModel, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from sampling_support import astronaut_png, denoiser_rows

from baselines.style_lora import canny_condition
from sms.config import RunConfig, resolve
from sms.models.configs import sd15_component_config
from sms.models.controlnet import (
    CONTROLNET_SD15_CONFIG_DIR,
    ModelLoadError,
    build_tiny_controlnet,
    check_fits,
    controlnet_to_ldm,
    load_controlnet,
)
from sms.models.stack import ModelSpec
from sms.rng import RandomStreams
from sms.runner import load_models, stylize_files
from sms.sampling import Phases

STEPS = 10


@pytest.fixture(scope="module")
def models():
    return load_models(ModelSpec(), "style_lora")


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    return astronaut_png(tmp_path_factory.mktemp("style_lora"))


def image_of(path) -> Image.Image:
    return Image.open(path).convert("RGB")


def latent(name, models, image, spec=None, **overrides) -> torch.Tensor:
    run = resolve(RunConfig(method=name, model=spec or ModelSpec(), method_overrides={"steps": STEPS, **overrides},
                            loop_overrides={"resolution": 64}))
    method = run.method_cls(run.method_config, models, run)
    with torch.no_grad():
        z, _ = method.generate(image, "astronaut", RandomStreams(0, "astronaut"), None, Phases(torch.device("cpu")),
                               False)
    return z


@pytest.mark.parametrize("name, strength, kept, start", [
    ("style_lora", 0.3, 3, 201), ("style_lora", 0.55, 5, 401), ("style_lora", 1.0, 10, 901),
    ("style_lora_controlnet", 0.3, 3, 201), ("style_lora_controlnet", 1.0, 10, 901)])
def test_strength_keeps_floor_n_s_steps_and_each_costs_its_rows(models, content, name, strength, kept, start):
    run = resolve(RunConfig(method=name, method_overrides={"steps": STEPS, "strength": strength},
                            loop_overrides={"resolution": 64}))
    method = run.method_cls(run.method_config, models, run)
    with denoiser_rows() as counted:
        result = method.stylize(image_of(content), "astronaut", RandomStreams(0, "astronaut"), progress=False)
    rows = sum(counted)
    per_step = 4 if name == "style_lora_controlnet" else 2          # CFG; the ControlNet's rows count as UNet rows
    assert rows == per_step * kept == run.method_cls.expected_unet_forwards(run.method_config, run)
    assert result.unet_forwards == rows and result.steps == kept
    assert result.record["sampling"] == {"start_timestep": start, "steps_run": kept,
                                             "text_to_image": strength == 1.0}


def test_the_style_network_is_what_samples(models, content):
    image = image_of(content)
    base = latent("style_lora", models, image)
    for spec in (ModelSpec(lora_scale=0.4), ModelSpec(style_base="tiny:1")):
        other = latent("style_lora", load_models(spec, "style_lora"), image, spec)
        assert (other - base).abs().max() > 1e-2
    assert torch.equal(latent("style_lora", models, image), base)   # rerun: bit-identical


def test_the_controlnet_condition_reaches_the_unet(models, content):
    seen = []

    def spy(module, args, kwargs, output):   # after the pre-hooks: what the UNet's forward was given
        seen.append((kwargs.get("down_block_additional_residuals"), kwargs.get("mid_block_additional_residual")))
    handle = models.denoisers.style_unet.register_forward_hook(spy, with_kwargs=True)
    image = image_of(content)
    try:
        controlled = latent("style_lora_controlnet", models, image)
    finally:
        handle.remove()
    assert len(seen) == STEPS
    down, mid = seen[0]
    assert len(down) == 4 and all(r.abs().mean() > 1e-3 for r in down) and mid.abs().mean() > 1e-3
    plain = latent("style_lora", models, image, strength=1.0)
    assert (controlled - plain).abs().max() > 1e-2
    assert torch.equal(latent("style_lora_controlnet", models, image, conditioning_scale=0.0), plain)
    assert (latent("style_lora_controlnet", models, image, condition="tile") - controlled).abs().max() > 1e-2
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)     # text-to-image: content only via the condition
    assert (latent("style_lora_controlnet", models, flipped) - controlled).abs().max() > 1e-2


def test_canny_condition_draws_the_edges_of_a_square():
    x = torch.zeros(1, 3, 32, 32)
    x[:, :, 8:24, 8:24] = 1.0
    edges = canny_condition(x, sigma=1.0, thresholds=(100.0, 200.0))
    assert edges.shape == (1, 3, 32, 32) and torch.equal(edges[:, 0], edges[:, 2])
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    ring = edges[0, 0]
    assert ring.sum() == 72                                   # one closed contour along the step at 7|8 and 23|24
    assert ring[7:25, 7:25].sum() == 72 and ring[10:22, 10:22].sum() == 0
    assert all(row.sum() >= 2 for row in ring[8:24])


def test_a_controlnet_loads_alike_from_a_folder_and_single_files(models, content, tmp_path):
    tiny = build_tiny_controlnet()
    tiny.save_pretrained(tmp_path / "folder")
    save_file(controlnet_to_ldm(tiny), str(tmp_path / "control_tiny_canny.safetensors"))
    save_file(controlnet_to_ldm(tiny, prefix=""), str(tmp_path / "control_tiny_noprefix.safetensors"))
    image = image_of(content)
    reference = latent("style_lora_controlnet", models, image, ModelSpec(controlnet="tiny"))
    for source in ("folder", "folder/diffusion_pytorch_model.safetensors", "control_tiny_canny.safetensors",
                   "control_tiny_noprefix.safetensors"):
        spec = ModelSpec(controlnet=str(tmp_path / source))
        assert torch.equal(latent("style_lora_controlnet", models, image, spec), reference), source


def test_bad_controlnet_files_say_what_is_wrong_and_where_one_comes_from(tmp_path):
    path = tmp_path / "control_v11p_sd15_canny.safetensors"
    save_file(controlnet_to_ldm(build_tiny_controlnet()), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as truncated:
        load_controlnet(str(path))
    message = str(truncated.value)
    assert str(path) in message and "truncated" in message and "lllyasviel" in message and "\n" not in message
    with pytest.raises(ModelLoadError, match="Cannot find the ControlNet .*lllyasviel"):
        load_controlnet(str(tmp_path / "absent.safetensors"))
    (tmp_path / "net.pth").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="Refusing to load"):
        load_controlnet(str(tmp_path / "net.pth"))
    with pytest.raises(ModelLoadError, match="names none"):
        load_controlnet(None)


def test_the_bundled_config_is_sd15s_and_a_mismatched_controlnet_is_refused(models):
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(sd15_component_config("unet"))
        bundled = ControlNetModel.from_config(ControlNetModel.load_config(str(CONTROLNET_SD15_CONFIG_DIR)))
        derived = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    shapes = lambda model: {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes(bundled) == shapes(derived)
    check_fits(bundled, unet, "sd15")
    with pytest.raises(ModelLoadError, match="does not fit the base UNet"):
        check_fits(bundled, models.unet, "control_v11p_sd15_canny.safetensors")


@pytest.mark.parametrize("name", ["style_lora", "style_lora_controlnet"])
def test_the_runner_writes_png_and_sidecar(models, content, tmp_path, name):
    config = RunConfig(method=name, model=ModelSpec(controlnet="tiny"), method_overrides={"steps": STEPS},
                       loop_overrides={"resolution": 64})
    report = stylize_files([content], config, tmp_path, progress=False, models=models)
    assert report.written == ["astronaut"], report.failed
    sidecar = json.loads((tmp_path / "astronaut.json").read_text())
    run = resolve(config)
    assert sidecar["family"] == "sampling" and sidecar["config"]["method"] == name
    assert sidecar["unet_forwards"]["total"] == run.method_cls.expected_unet_forwards(run.method_config, run)
    assert sidecar["iterations"] == (8 if name == "style_lora" else STEPS)
    controlled = name == "style_lora_controlnet"
    assert ("controlnet" in sidecar["config"]["model"]) == controlled       # only its digest depends on the file
    assert sidecar["models"].get("controlnet") == ("tiny" if controlled else None)
    assert sidecar["label"] and Image.open(tmp_path / "astronaut.png").size == (72, 64)
