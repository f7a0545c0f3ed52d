"""``sms train-generator`` (issue 14): every method trains G_θ with the same trainer; ANS anneals over the
training steps; a killed training resumes from its last checkpoint and ends bit-identical to one never stopped;
a different config in the same folder is refused."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sms.config import ConfigError
from sms.diffusion import ddim_grid
from sms.generator_checkpoint import read_checkpoint
from sms.generator_train import checkpoints, train_generator
from sms.models import ModelSpec, load_stack
from sms.timesteps import GRID_STEPS, t_upper
from workflow.cli import build_parser, main
from workflow.discovery import load_methods
from workflow.generator_cli import train_config, train_settings

load_methods()


def photos(folder: Path, count: int = 3, size=(80, 72)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"photo{i}.png")
    return folder


def argv(content: Path, out: Path, *extra: str, steps: int = 6) -> list[str]:
    return ["train-generator", "--content", str(content), "--out", str(out), "--steps", str(steps),
            "--batch-size", "2", "--checkpoint-every", "1", "--no-progress", *extra]


def by_hand(arguments: list[str]):
    """The RunConfig and TrainConfig the CLI builds from ``arguments``."""
    from workflow.by_hand import run_config

    args = build_parser().parse_args(arguments)
    return run_config(args), train_config(train_settings(args))


@pytest.fixture(scope="module")
def stack():
    return load_stack(ModelSpec())   # trains the fake LoRA: this module's own stack


def tensors_of(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[0]


def logged(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["sms", "sds", "dds", "pds", "vsd"])
def test_every_method_trains_a_generator_with_the_same_trainer(method, tmp_path, stack):
    content = photos(tmp_path / "photos")
    run, train = by_hand(argv(content, tmp_path / "g", "--method", method, steps=3))
    result = train_generator(sorted(content.glob("*.png")), run, train, tmp_path / "g", models=stack, progress=False)
    assert result.steps_run == 3
    weights = tensors_of(tmp_path / "g" / "generator.safetensors")
    assert weights["generator.unet.conv_out.weight"].abs().max() > 0        # θ left the identity
    assert all(torch.isfinite(value).all() for value in weights.values())
    record = json.loads((tmp_path / "g" / "training.json").read_text())
    assert record["status"] == "finished" and record["run"]["method"] == method
    assert record["data"]["images"] == 3 and len(record["data"]["sha256"]) == 64
    assert [entry["step"] for entry in logged(tmp_path / "g")] == [0, 1, 2]


def test_timesteps_are_drawn_per_crop_and_anneal_over_the_training_steps(tmp_path, stack):
    content = photos(tmp_path / "photos")
    run, train = by_hand(argv(content, tmp_path / "g", "--batch-size", "4", steps=8))
    train_generator(sorted(content.glob("*.png")), run, train, tmp_path / "g", models=stack, progress=False)
    grid = ddim_grid(stack.scheduler, GRID_STEPS)
    entries = logged(tmp_path / "g")
    assert all(len(entry["t"]) == 4 for entry in entries)
    assert any(len(set(entry["t"])) > 1 for entry in entries)
    for entry in entries:
        assert max(entry["t"]) <= t_upper(grid, entry["step"], 8)           # ANS over the 8 training steps
    assert t_upper(grid, 7, 8) < 100 < max(entries[0]["t"])


def test_killed_training_resumes_bit_identical_to_an_uninterrupted_one(tmp_path, stack):
    content = photos(tmp_path / "photos")
    steps = 30
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(argv(content, whole, steps=steps)) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "workflow.cli", *argv(content, killed, steps=steps)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not (killed / "checkpoints" / "step-0000003.safetensors").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "generator.safetensors").exists(), "the run finished before it was killed"
    stopped_at = int(checkpoints(killed)[-1].stem.split("-")[1])
    assert stopped_at < steps
    assert main(argv(content, killed, steps=steps)) == 0
    for name in ("generator.safetensors", f"checkpoints/step-{steps:07d}.safetensors"):
        expected, got = tensors_of(whole / name), tensors_of(killed / name)
        assert expected.keys() == got.keys()
        assert any(key.startswith("aux.fake.") for key in got) == name.startswith("checkpoints")
        for key in expected.keys() - {"rng.torch"}:   # the global RNG: whatever each process did before
            assert torch.equal(expected[key], got[key]), key
    assert logged(killed) == logged(whole)
    assert read_checkpoint(killed / f"checkpoints/step-{steps:07d}.safetensors")[1]["optimizers"].keys() == {
        "generator", "fake"}


def test_a_different_config_in_the_same_folder_is_refused(tmp_path, stack):
    content = photos(tmp_path / "photos")
    run, train = by_hand(argv(content, tmp_path / "g", steps=2))
    train_generator(sorted(content.glob("*.png")), run, train, tmp_path / "g", models=stack, progress=False)
    _, other = by_hand(argv(content, tmp_path / "g", "--lr", "0.5", steps=2))
    with pytest.raises(ConfigError, match="another config"):
        train_generator(sorted(content.glob("*.png")), run, other, tmp_path / "g", models=stack, progress=False)
    again = train_generator(sorted(content.glob("*.png")), run, train, tmp_path / "g", models=stack, progress=False)
    assert again.steps_run == 0
    anew = train_generator(sorted(content.glob("*.png")), run, other, tmp_path / "g", models=stack, progress=False,
                           restart=True)
    assert anew.steps_run == 2 and anew.resumed_from == 0
    assert json.loads((tmp_path / "g" / "training.json").read_text())["train"]["lr"] == 0.5


def test_command_line_errors_are_one_paragraph_with_exit_2(tmp_path, capsys):
    content = photos(tmp_path / "photos")
    with pytest.raises(SystemExit) as exit_info:
        main(argv(content, tmp_path / "g", "--crop", "60"))
    assert exit_info.value.code == 2
    assert "multiple of 8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train-generator", "--out", str(tmp_path / "g")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["stylize", "--generator", str(tmp_path / "nothing"), str(content), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "train it first" in capsys.readouterr().err
