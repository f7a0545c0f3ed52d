"""The one stylizer interface: a method of any family writes the same PNG + sidecar through the runner, takes its
exemplar from a file or a folder (one per content image, drawn from the seed), and its results depend on exactly
the weights and exemplar it uses. A toy classic method (registered for these tests only) keeps them independent
of the real baselines."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sms.config import RunConfig, resolve
from sms.exemplars import ExemplarError
from sms.models.stack import ModelSpec
from sms.runner import InputError, config_digest, stylize_files
from sms.stylizer import Stylized, Stylizer, stylizers


@dataclass
class BlendConfig:
    weight: float = 0.25


class Blend(Stylizer):
    """result = (1 − w)·content + w·exemplar (exemplar resized to the content's size)."""

    Config = BlendConfig
    family = "classic"
    style_inputs = ("exemplar",)
    needs_diffusion = False
    spec_weights = ("vgg19",)

    def stylize(self, image, image_id, streams, *, exemplar=None, progress=True):
        start = time.perf_counter()
        content = np.asarray(image, dtype=np.float64)
        style = np.asarray(exemplar.resize(image.size), dtype=np.float64)
        mixed = (1 - self.config.weight) * content + self.config.weight * style
        result = Image.fromarray(np.round(mixed).astype(np.uint8))
        return Stylized(result, time.perf_counter() - start, {"blending": 0.5, "other": 0.25}, 0, 2,
                        record={"note": "toy"})


@pytest.fixture
def blend(monkeypatch):
    import sms.style_matching  # noqa: F401  (registers sms)

    monkeypatch.setitem(stylizers._entries, "blend", Blend)
    Blend.registry_name = "blend"
    return Blend


def solid(path: Path, colour, size=(24, 16)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def config(exemplar, **overrides) -> RunConfig:
    return RunConfig(**{"method": "blend", "exemplar": str(exemplar), "model": ModelSpec(vgg19="tiny"), **overrides})


def test_a_classic_method_writes_the_runners_png_and_sidecar(blend, tmp_path):
    content = solid(tmp_path / "photo.png", (200, 100, 0))
    exemplar = solid(tmp_path / "style.png", (0, 100, 200), size=(40, 40))
    report = stylize_files([content], config(exemplar), tmp_path / "out", progress=False)
    assert report.written == ["photo"] and not report.failed
    pixels = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert pixels.shape == (16, 24, 3) and (pixels == [150, 100, 50]).all()
    sidecar = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert sidecar["family"] == "classic" and sidecar["iterations"] == 2 and sidecar["note"] == "toy"
    assert sidecar["timings"]["seconds_blending"] == 0.5 and sidecar["timings"]["seconds_iterations"] == 0.75
    assert sidecar["timings"]["seconds_per_iter"] == 0.375
    assert sidecar["unet_forwards"] == {"total": 0, "per_iter": 0.0}
    assert sidecar["exemplar"]["path"] == str(exemplar.resolve()) and len(sidecar["exemplar"]["sha256"]) == 64
    assert sidecar["models"] == {"vgg19": "tiny"}
    assert sidecar["config"]["model"] == {"device": "cpu", "dtype": "float32", "vgg19": "tiny"}
    assert sidecar["config"]["loop"] == {"seed": 0, "resolution": 512, "input_resize": "suite"}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [record["id"] for record in manifest["records"]] == ["photo"]


def test_an_exemplar_method_without_an_exemplar_is_refused(blend, tmp_path):
    content = solid(tmp_path / "photo.png", (1, 2, 3))
    with pytest.raises(InputError, match="takes an exemplar style image"):
        stylize_files([content], replace(config("x"), exemplar=None), tmp_path / "out", progress=False)


def test_a_folder_of_exemplars_gives_each_image_its_own_drawn_from_the_seed(blend, tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    for i in range(4):
        solid(styles / f"s{i}.png", (60 * i, 0, 0))
    photos = [solid(tmp_path / f"p{i}.png", (0, 0, 0)) for i in range(8)]

    def chosen(out, **overrides):
        stylize_files(photos, config(styles, **overrides), out, progress=False)
        return {p.stem: json.loads((out / f"{p.stem}.json").read_text())["exemplar"]["path"] for p in photos}

    first = chosen(tmp_path / "a")
    assert first == chosen(tmp_path / "b")                       # rerun: the same draws
    assert len(set(first.values())) > 1                          # not always the first file
    for shard in ("0/2", "1/2"):
        stylize_files(photos, config(styles), tmp_path / "c", shard=shard, progress=False)
    halves = {p.stem: json.loads((tmp_path / "c" / f"{p.stem}.json").read_text())["exemplar"]["path"] for p in photos}
    assert halves == first                                       # shards draw what one process draws
    other_seed = chosen(tmp_path / "d", loop_overrides={"seed": 1})
    assert other_seed != first


def test_an_unreadable_exemplar_draw_passes_to_the_next_readable_file(blend, tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    good = solid(styles / "b_good.png", (0, 200, 0))
    photos = [solid(tmp_path / f"p{i}.png", (0, 0, 0)) for i in range(6)]
    report = stylize_files(photos, config(styles), tmp_path / "out", progress=False)
    assert sorted(report.written) == [p.stem for p in photos] and not report.failed
    paths = {json.loads((tmp_path / "out" / f"{p.stem}.json").read_text())["exemplar"]["path"] for p in photos}
    assert paths == {str(good.resolve())}
    good.unlink()
    with pytest.raises(ExemplarError, match="no exemplar in .* is a usable image: .*a_broken.png"):
        stylize_files(photos, config(styles), tmp_path / "out2", progress=False)


def test_a_method_without_an_exemplar_input_ignores_the_styles_exemplar_folder(blend, monkeypatch, tmp_path):
    class Grey(Blend):
        style_inputs = ("text",)

        def stylize(self, image, image_id, streams, *, exemplar=None, progress=True):
            assert exemplar is None
            return Stylized(image.convert("L").convert("RGB"), 0.0, {"grey": 0.0}, 0, 1)

    monkeypatch.setitem(stylizers._entries, "grey", Grey)
    styles = tmp_path / "styles"
    styles.mkdir()
    solid(styles / "s.png", (9, 9, 9))
    photo = solid(tmp_path / "photo.png", (200, 100, 0))
    report = stylize_files([photo], config(styles, method="grey"), tmp_path / "out", progress=False)
    assert report.written == ["photo"] and not report.failed
    assert "exemplar" not in json.loads((tmp_path / "out" / "photo.json").read_text())
    assert Image.open(tmp_path / "out" / "photo.png").getpixel((0, 0)) == (118, 118, 118)


def test_results_follow_the_exemplars_contents_and_only_the_weights_the_method_uses(blend, tmp_path):
    exemplar = solid(tmp_path / "style.png", (0, 0, 0))
    digest = config_digest(resolve(config(exemplar)))
    solid(exemplar, (255, 0, 0))   # replaced in place
    assert config_digest(resolve(config(exemplar))) != digest
    digest = config_digest(resolve(config(exemplar)))
    other_base = config(exemplar, model=ModelSpec(base="tiny:1", style_lora="x.safetensors", vgg19="tiny"))
    assert config_digest(resolve(other_base)) == digest          # the SD weights are not this method's
    assert config_digest(resolve(config(exemplar, model=ModelSpec(vgg19="tiny:1")))) != digest
    sms = RunConfig(method="sms")
    assert config_digest(resolve(replace(sms, model=ModelSpec(vgg19="tiny:1")))) == config_digest(resolve(sms))
    with_exemplar = resolve(replace(sms, exemplar=str(exemplar)))   # a style's exemplar: not SMS's input
    assert with_exemplar.run.exemplar is None and config_digest(with_exemplar) == config_digest(resolve(sms))


def test_a_sampling_method_depends_on_the_styles_lora_only_when_it_takes_one(tmp_path):
    import baselines.style_lora  # noqa: F401  (registers style_lora)
    import baselines.styleid  # noqa: F401  (registers styleid)
    from sms.runner import models_kind

    exemplar = solid(tmp_path / "style.png", (0, 0, 0))
    other_style = ModelSpec(style_base="tiny:1", style_lora=str(exemplar), lora_scale=0.5)
    styleid = RunConfig(method="styleid", exemplar=str(exemplar))
    assert config_digest(resolve(replace(styleid, model=other_style))) == config_digest(resolve(styleid))
    assert "style_lora" not in resolve(styleid).as_dict()["model"] and models_kind("styleid") == "base"
    lora = RunConfig(method="style_lora")
    assert config_digest(resolve(replace(lora, model=ModelSpec(style_base="tiny:1")))) != config_digest(resolve(lora))
    assert models_kind("style_lora") == "sampling" and models_kind("sms") == "distillation"


def test_unknown_method_names_every_family(blend):
    from sms.registry import UnknownName

    with pytest.raises(UnknownName, match=r"registered: .*blend.*sms"):
        resolve(RunConfig(method="blnd"))
