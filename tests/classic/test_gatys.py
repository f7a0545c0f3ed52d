"""Gatys et al. on VGG-19: the losses' maths, the optimisation on the seeded stand-in, weight files, the pipeline."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import baselines.gatys  # noqa: F401  (registers "gatys")
from baselines.gatys import Objective, content_loss, gram, style_loss
from sms.config import ConfigError, RunConfig, resolve
from sms.image_tensors import input_tensor
from sms.models.errors import ModelLoadError
from sms.models.stack import ModelSpec
from sms.models.vgg import VGGFeatures, load_features, standin_state
from sms.rng import RandomStreams
from sms.runner import stylize_files
from sms.sidecars import DEMO_LABEL

ITERS = 12


@pytest.fixture(scope="module")
def content() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((96, 64), Image.LANCZOS)


@pytest.fixture(scope="module")
def style() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee()).resize((90, 60), Image.LANCZOS)


def _run(content, style, vgg19="tiny", image_id="astronaut", **overrides):
    run = resolve(RunConfig(method="gatys", model=ModelSpec(vgg19=vgg19), method_overrides={"iterations": ITERS,
                            **overrides}, loop_overrides={"resolution": 64}))
    method = run.method_cls(run.method_config, None, run)
    return method.stylize(content, image_id, RandomStreams(0, image_id), exemplar=style, progress=False), run


def test_gram_and_losses_follow_the_notebooks_scaling():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    g = gram(features)
    assert torch.equal(g, torch.tensor([[[2.5, 5.5], [5.5, 12.5]]]))   # F·Fᵀ / M, M = 2 positions
    target = torch.zeros_like(g)
    # mean over N² = 4 entries, then / N² = 4: (6.25 + 2·30.25 + 156.25) / 16
    assert style_loss([g], [target]).item() == pytest.approx((6.25 + 2 * 30.25 + 156.25) / 16)
    assert content_loss(features, torch.zeros_like(features)).item() == pytest.approx(30 / 4)


def test_style_loss_falls_below_the_contents_own_and_content_stays_bounded(content, style):
    result, run = _run(content, style)
    losses = result.record["losses"]
    assert len(losses["style"]) == len(losses["content"]) == ITERS == result.steps
    assert losses["content"][0] == 0.0    # initialised from the content image
    assert losses["style"][0] == pytest.approx(losses["content_image"]["style"], rel=1e-5)
    assert losses["final"]["style"] < losses["style"][0] / 10
    assert losses["style"][-1] < losses["style"][ITERS // 2] < losses["style"][0]
    # bounded: the result stays nearer the content (relu4_2) than the exemplar itself is
    vgg = VGGFeatures(load_features("tiny"), (*run.method_config.style_layers, "relu4_2"))
    target = input_tensor(content, 64)
    objective = Objective(vgg, run.method_config, target, input_tensor(style, 64))
    exemplar_as_content = torch.nn.functional.interpolate(input_tensor(style, 64), size=target.shape[-2:])
    assert max(losses["content"]) < objective.losses(exemplar_as_content)[1].item() / 2
    assert result.image.size == content.size and result.unet_forwards == 0
    assert set(result.phases) == {"optimisation"}
    assert np.abs(np.asarray(result.image, dtype=float) - np.asarray(content)).mean() > 5


def test_rerun_is_bit_identical_and_noise_init_draws_from_the_streams(content, style):
    first, second = _run(content, style)[0], _run(content, style)[0]
    assert first.image.tobytes() == second.image.tobytes() and first.record == second.record
    noise = _run(content, style, init="noise", iterations=2)[0]
    again = _run(content, style, init="noise", iterations=2)[0]
    other = _run(content, style, init="noise", iterations=2, image_id="other")[0]
    assert noise.image.tobytes() == again.image.tobytes() != other.image.tobytes()
    assert noise.record["losses"]["content"][0] > 0


def test_adam_also_lowers_the_style_loss(content, style):
    losses = _run(content, style, optimizer="adam", iterations=6)[0].record["losses"]
    assert losses["style"][-1] < losses["style"][0]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_file_saved_from_the_stand_in_gives_the_stand_ins_result(tmp_path, content, style, suffix):
    state = standin_state(0)
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({f"features.{k}": v for k, v in state.items()}, str(path))   # the full model's key names
    else:
        torch.save(state, path)                                                # the features module's own
    from_file = _run(content, style, vgg19=str(path), iterations=2)[0]
    stand_in = _run(content, style, iterations=2)[0]
    assert from_file.image.tobytes() == stand_in.image.tobytes()


def test_missing_weights_say_where_to_set_them_and_where_the_file_comes_from(tmp_path):
    with pytest.raises(ModelLoadError, match=r"stylize\.vgg19.*--vgg19 FILE.*vgg19-dcbb9e9d\.pth"):
        load_features(None)
    with pytest.raises(ModelLoadError, match="do not exist"):
        load_features(str(tmp_path / "nowhere.pth"))


def test_wrong_or_truncated_files_name_the_problem(tmp_path):
    from safetensors.torch import save_file

    partial = tmp_path / "partial.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(partial))
    with pytest.raises(ModelLoadError, match=r"'features\.0\.bias' is missing"):
        load_features(str(partial))
    shaped = tmp_path / "shaped.pth"
    torch.save({"features.0.weight": torch.zeros(64, 4, 3, 3)}, shaped)
    with pytest.raises(ModelLoadError, match=r"'features\.0\.weight' has shape \(64, 4, 3, 3\), not \(64, 3, 3, 3\)"):
        load_features(str(shaped))
    for source in (partial, shaped):
        cut = tmp_path / f"cut{source.suffix}"
        cut.write_bytes(source.read_bytes()[:-100])
        with pytest.raises(ModelLoadError, match="truncated or corrupt"):
            load_features(str(cut))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file" * 8)
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        load_features(str(junk))


def test_bad_settings_are_refused():
    for overrides, needle in [({"iterations": 0}, "iterations"), ({"size": 16}, "size"),
                              ({"optimizer": "sgd"}, "optimizer"), ({"init": "zeros"}, "init")]:
        with pytest.raises(ConfigError, match=needle):
            resolve(RunConfig(method="gatys", model=ModelSpec(vgg19="tiny"), method_overrides=overrides))


def test_stylize_files_writes_png_and_sidecar(tmp_path, content, style):
    photo, exemplar = tmp_path / "astronaut.png", tmp_path / "coffee.png"
    content.save(photo)
    style.save(exemplar)
    config = RunConfig(method="gatys", model=ModelSpec(vgg19="tiny"), exemplar=str(exemplar),
                       method_overrides={"iterations": 3}, loop_overrides={"resolution": 64})
    report = stylize_files([photo], config, tmp_path / "out", progress=False)
    assert report.written == ["astronaut"] and not report.failed
    assert Image.open(tmp_path / "out" / "astronaut.png").size == content.size
    sidecar = json.loads((tmp_path / "out" / "astronaut.json").read_text())
    assert sidecar["family"] == "classic" and sidecar["label"] == DEMO_LABEL
    assert sidecar["iterations"] == 3 and sidecar["unet_forwards"]["total"] == 0
    assert sidecar["models"]["vgg19"] == "tiny" and "seconds_optimisation" in sidecar["timings"]
    assert len(sidecar["losses"]["style"]) == 3
    assert sidecar["config"]["model"]["vgg19"] == "tiny"
