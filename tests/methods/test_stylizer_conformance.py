"""Every registered sampling and classic method (StyleID, FreeStyle, Style-LoRA, Magenta, Gatys, plugins) goes
through the runner on tiny models: a PNG of the content's size that is neither the content nor blank, a
bit-identical rerun, a sidecar that reports exactly the UNet rows a global hook counted and the rows the method
says it costs, and its family and style inputs declared."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from sampling_support import astronaut_png, denoiser_rows

from sms.config import RunConfig, resolve
from sms.models.stack import ModelSpec
from sms.runner import load_models, stylize_files
from sms.stylizer import STYLE_INPUTS, stylizers
from workflow.discovery import load_methods

load_methods()
STYLIZERS = stylizers.names()


def test_the_suites_baselines_are_registered():
    assert {"styleid", "freestyle", "style_lora", "style_lora_controlnet", "magenta", "gatys"} <= set(STYLIZERS)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("conformance")
    content = astronaut_png(folder)
    exemplar = folder / "coffee.png"
    Image.fromarray(data.coffee()).resize((80, 60), Image.Resampling.LANCZOS).save(exemplar)
    return content, exemplar


def fast_settings(cls) -> dict:
    """Few steps where a method has a step setting, so every method runs in seconds here."""
    fields = {f for f in cls.Config.__dataclass_fields__}
    return {name: 4 for name in ("steps", "iterations", "inversion_steps") if name in fields}


def run(name, images, out, models):
    content, exemplar = images
    cls = stylizers.get(name)
    config = RunConfig(method=name, model=ModelSpec(controlnet="tiny", vgg19="tiny"), method_overrides=fast_settings(cls),
                       loop_overrides={"resolution": 64}, exemplar=str(exemplar) if "exemplar" in cls.style_inputs else None)
    with denoiser_rows() as rows:
        report = stylize_files([content], config, out, progress=False, models=models)
    assert report.written == ["astronaut"], report.failed
    sidecar = json.loads((out / "astronaut.json").read_text())
    return np.asarray(Image.open(out / "astronaut.png")), sidecar, sum(rows), resolve(config)


@pytest.mark.parametrize("name", STYLIZERS)
def test_every_stylizer_runs_reproducibly_and_counts_its_unet_rows(name, images, tmp_path):
    cls = stylizers.get(name)
    assert cls.family in ("sampling", "classic") and set(cls.style_inputs) <= set(STYLE_INPUTS) and cls.style_inputs
    models = load_models(ModelSpec(controlnet="tiny", vgg19="tiny"), name)
    assert (models is None) == (not cls.needs_diffusion)
    first, sidecar, hooked, resolved = run(name, images, tmp_path / "a", models)
    content = np.asarray(Image.open(images[0]))
    assert first.shape == content.shape
    assert np.abs(first.astype(float) - content).mean() > 2.0, "the output is the content image"
    assert first.std() > 2.0, "the output is blank"
    again, _, _, _ = run(name, images, tmp_path / "b", models)
    assert np.array_equal(first, again)
    assert sidecar["family"] == cls.family and sidecar["config"]["method"] == name
    assert sidecar["unet_forwards"]["total"] == hooked
    expected = cls.expected_unet_forwards(resolved.method_config, resolved)
    assert hooked == (expected or 0)
    assert sidecar["timings"]["seconds_total"] > 0 and sidecar["iterations"] >= 1


@pytest.mark.parametrize("name", STYLIZERS)
def test_every_profile_resolves(name):
    cls = stylizers.get(name)
    assert cls.default_profile in cls.profiles
    for profile in cls.profiles:
        resolved = resolve(replace(RunConfig(method=name), profile=profile))
        assert isinstance(resolved.method_config, cls.Config)
