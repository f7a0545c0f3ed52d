"""The one command line: every input error is one paragraph naming the fix, exit status 2, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow.by_hand import run_config
from workflow.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def sms(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workflow.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=180)


def user_error(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (80, 64), (120, 90, 60)).save(path)
    return path


def params_file(tmp_path: Path, change) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return path


def test_unknown_method_names_the_registered_ones(tmp_path, photo):
    user_error(sms("stylize", str(photo), "--method", "smss", "--out", str(tmp_path / "o")),
               "unknown method 'smss'", "Did you mean 'sms'?", "dds")
    assert not (tmp_path / "o").exists()


def test_unknown_setting_names_the_known_ones(tmp_path, photo):
    user_error(sms("stylize", str(photo), "--set", "guidance_scal=3", "--out", str(tmp_path / "o")),
               "no setting(s) guidance_scal", "Did you mean 'guidance_scale'?")


def test_unknown_run_and_profile_key(tmp_path):
    user_error(sms("stylize", "--run", "smss"), "no run 'smss'", "Did you mean 'sms'?")
    bad = params_file(tmp_path, lambda p: p["profiles"]["demo"]["styles"]["watercolor"].update(lamda=1e-3))
    user_error(sms("--params", str(bad), "check"), "profiles.demo.styles.watercolor.lamda: unknown key",
               "Did you mean 'lambda'?")


def test_check_lists_every_missing_file_of_the_paper_profile_at_once(tmp_path):
    bad = params_file(tmp_path, lambda p: p.update(profile="paper"))
    done = sms("--params", str(bad), "check", env={"HOME": str(tmp_path)})
    user_error(done, "watercolor.lora: LoRA file", "oil.style_base", "pixel.style_set", "content.zip",
               "stylize.device: 'cuda' but no CUDA device", "stable-diffusion-v1-5")
    assert done.stderr.count("\n  - ") >= 12   # 4 styles × (lora, style base, style set) + content + model + device


def test_truncated_and_foreign_weight_files_are_named(tmp_path):
    truncated, foreign = tmp_path / "lora.safetensors", tmp_path / "base.safetensors"
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.zeros(4, 768)}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    save_file({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024)},
              str(foreign))

    def change(params):
        params["profiles"]["demo"]["stylize"]["model"] = str(foreign)
        params["profiles"]["demo"]["styles"]["watercolor"]["lora"] = str(truncated)
    done = sms("--params", str(params_file(tmp_path, change)), "check")
    user_error(done, "header describes", "truncated or damaged", "cross-attention width 1024, its config expects 768")


def test_missing_model_and_pickle_refusal_by_hand(tmp_path, photo):
    user_error(sms("stylize", str(photo), "--model", str(tmp_path / "nope"), "--style-prompt", "x",
                   "--out", str(tmp_path / "o")), "Cannot find the model")
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not really")
    user_error(sms("stylize", str(photo), "--model", str(pickle), "--style-prompt", "x", "--out", str(tmp_path / "o")),
               "--allow-pickle")


def test_bad_inputs_and_missing_stage_inputs(tmp_path):
    user_error(sms("stylize", str(tmp_path / "none.png"), "--out", str(tmp_path / "o")), "does not exist")
    user_error(sms("stylize", "--run", "sms", cwd=tmp_path, env={}), "params.yaml not found")
    (tmp_path / "params.yaml").write_text("profile: demo\nseed: [\n")
    user_error(sms("check", cwd=tmp_path), "is not valid YAML")


def test_a_folder_is_stylised_image_by_image(tmp_path, photo):
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    photo.rename(folder / "a.png")
    (folder / "nested" / "b.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "notes.txt").write_text("not an image")
    done = sms("stylize", str(folder), "--iters", "2", "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]


def test_a_broken_image_is_listed_and_the_exit_status_says_so(tmp_path, photo):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG broken")
    done = sms("stylize", str(photo), str(broken), "--iters", "2", "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "broken.png" in done.stderr and (tmp_path / "out" / "photo.png").is_file()


def test_every_flag_has_help_and_every_command_an_entry():
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices
    assert set(subparsers) == {"check", "stage", "prepare", "stylize", "evaluate", "metrics", "report", "methods",
                               "train-generator"}
    for name, sub in subparsers.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"sms {name} {action.option_strings[0]} has no help"
    assert "examples:" in parser.format_help()


def test_cli_speed_options_reach_the_model_spec():
    def spec(*flags):
        return run_config(build_parser().parse_args(["stylize", "x.png", "--out", "o", *flags])).model

    plain = spec()
    assert (plain.dtype, plain.tf32, plain.channels_last, plain.compile, plain.compile_mode) == \
        ("float32", False, False, False, None)
    fast = spec("--dtype", "bfloat16", "--tf32", "--channels-last", "--compile", "reduce-overhead")
    assert (fast.dtype, fast.tf32, fast.channels_last, fast.compile, fast.compile_mode) == \
        ("bfloat16", True, True, True, "reduce-overhead")
    assert spec("--compile").compile and spec("--compile").compile_mode is None


def test_a_div2k_zip_with_the_wrong_checksum_names_the_setting_that_accepts_it(tmp_path):
    archive = tmp_path / "DIV2K_valid_HR.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)   # an empty zip: not the official archive

    def change(params):
        params["profile"] = "paper"
        params["profiles"]["paper"]["content"]["zip"] = str(archive)
    done = sms("--params", str(params_file(tmp_path, change)), "stage", cwd=tmp_path)
    user_error(done, "checksum mismatch", "content.sha256")
    assert "--allow-download" not in done.stderr
