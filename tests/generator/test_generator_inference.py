"""``sms stylize --generator RUN_DIR`` (issue 14): one forward pass per image, the per-image path's PNG +
sidecar format (eval reads it unchanged), batched by size, resumable, bad files recorded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from eval.runtime import SecondsPerImage, UNetForwards
from sms.generator_infer import TrainedGenerator
from sms.hashing import sha256_file
from sms.image_tensors import input_tensor, tensor_to_image
from sms.loop import decode, encode
from sms.results import read_results
from sms.rng import RandomStreams
from workflow.cli import main
from workflow.discovery import load_methods

load_methods()
SIZES = {"a": (80, 72), "b": (80, 72), "c": (64, 96)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("generator")
    rng = np.random.default_rng(1)
    for name, (w, h) in SIZES.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"{name}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "train").mkdir()
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(root / "train" / "t.png")
    assert main(["train-generator", "--content", str(root / "train"), "--out", str(root / "run"), "--steps", "3",
                 "--batch-size", "2", "--lr", "0.01", "--no-progress"]) == 0
    return root


def stylize(root, out, *extra):
    return main(["stylize", "--generator", str(root / "run"), *(str(root / f"{n}.png") for n in SIZES),
                 "--out", str(out), *extra])


def test_outputs_are_one_forward_pass_of_the_trained_generator(trained, tiny_stack):
    out = trained / "out"
    assert stylize(trained, out, "--batch-size", "2") == 0
    generator = TrainedGenerator.load(trained / "run")
    assert generator.network.unet.conv_out.weight.abs().max() > 0
    for name, size in SIZES.items():
        image = Image.open(trained / f"{name}.png").convert("RGB")
        with torch.no_grad():
            z = encode(tiny_stack, input_tensor(image, 64), RandomStreams(0, name), "sample")
            expected = np.asarray(tensor_to_image(decode(tiny_stack, generator.network(z)), size), dtype=int)
            identity = np.asarray(tensor_to_image(decode(tiny_stack, z), size), dtype=int)
        got = np.asarray(Image.open(out / f"{name}.png"), dtype=int)
        assert got.shape == (size[1], size[0], 3)
        assert np.abs(got - expected).max() <= 1          # a batch of 2 rounds like 1, to one 8-bit level
        assert np.abs(got - identity).mean() > 0.5        # … and G is not the identity any more


def test_sidecars_say_which_generator_and_eval_reads_them(trained):
    out = trained / "out-sidecars"
    assert stylize(trained, out) == 0
    sidecar = json.loads((out / "a.json").read_text())
    assert sidecar["generator"]["sha256"] == sha256_file(trained / "run" / "generator.safetensors")
    assert sidecar["generator"]["steps"] == 3 and sidecar["iterations"] == 0
    assert sidecar["config"]["method"] == "sms" and sidecar["source"]["size"] == [80, 72]
    assert sidecar["batch_size"] == 2 and json.loads((out / "c.json").read_text())["batch_size"] == 1
    samples = read_results(out)
    assert sorted(sample.id for sample in samples) == ["a", "b", "c"]
    seconds = SecondsPerImage().score(samples)
    assert bool((seconds > 0).all()) and bool(torch.isfinite(seconds).all())
    assert UNetForwards().score(samples).tolist() == [0.0, 0.0, 0.0]


def test_rerun_keeps_finished_images_and_bad_files_are_recorded(trained, capsys):
    out = trained / "out-rerun"
    assert stylize(trained, out) == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    assert stylize(trained, out) == 0
    assert "0 image(s)" in capsys.readouterr().out and (out / "a.png").stat().st_mtime_ns == stamp
    code = main(["stylize", "--generator", str(trained / "run"), str(trained / "broken.png"), str(trained / "a.png"),
                 "--out", str(trained / "out-broken")])
    assert code == 1
    assert "broken.png" in capsys.readouterr().err and (trained / "out-broken" / "a.png").is_file()
