"""params.yaml's inputs of the non-distillation baselines: exemplar style images per style, a method's own weight
files (ControlNet, VGG-19) and per-profile method settings; `sms check` refuses a run that would fail on its
first image, and `sms methods` says what each method is and takes."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from PIL import Image

from sms.config import resolve
from workflow.check import check_profile
from workflow.discovery import load_methods
from workflow.params import Params

ROOT = Path(__file__).resolve().parents[2]
EXEMPLAR_METHODS = {"styleid", "magenta", "gatys"}


@pytest.fixture
def params(tmp_path, monkeypatch):
    load_methods()
    monkeypatch.chdir(tmp_path)
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    return Params(raw, tmp_path / "params.yaml")


def problems_of(params, runs) -> list[str]:
    return [p for p in check_profile(params, runs) if ".exemplar" in p or ".controlnet" in p or ".vgg19" in p]


def test_the_paper_profile_declares_every_new_baseline_as_a_run(params):
    methods = {entry["method"] for entry in params.runs.values()}
    assert {"styleid", "freestyle", "style_lora", "style_lora_controlnet", "magenta", "gatys"} <= methods
    labels = {entry["tables"]["main"] for entry in params.runs.values() if "main" in entry.get("tables", {})}
    assert {"StyleID", "FreeStyle", "Style-LoRA"} <= labels      # joined with the paper's rows of those labels


def test_a_style_without_an_exemplar_is_refused_for_exemplar_methods_only(params):
    del params.styles["watercolor"]["exemplar"]
    found = problems_of(params, ["styleid", "magenta", "sms", "freestyle"])
    assert len(found) == 2 and all("profiles.demo.styles.watercolor.exemplar: missing" in p for p in found)
    assert any("'styleid'" in p for p in found) and any("'magenta'" in p for p in found)
    assert problems_of(params, ["sms", "freestyle", "style_lora_sdedit"]) == []


def test_an_exemplar_file_folder_or_the_style_set_is_accepted_and_a_bad_one_named(params, tmp_path):
    image = tmp_path / "painting.png"
    Image.new("RGB", (32, 32), (9, 9, 9)).save(image)
    for value in (str(image), str(tmp_path), "style_set"):
        params.styles["watercolor"]["exemplar"] = value
        assert problems_of(params, ["styleid"]) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    params.styles["watercolor"]["exemplar"] = str(empty)
    [problem] = problems_of(params, ["magenta"])
    assert "holds no image files" in problem and str(empty) in problem
    params.styles["watercolor"]["exemplar"] = str(tmp_path / "missing.png")
    [problem] = problems_of(params, ["gatys"])
    assert "does not exist" in problem
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    params.styles["watercolor"]["exemplar"] = str(broken)
    [problem] = problems_of(params, ["styleid"])
    assert "not a readable image" in problem and str(broken) in problem


def test_style_set_exemplar_resolves_to_the_styles_reference_art(params, tmp_path):
    assert params.run_config("styleid", "watercolor").exemplar == "data/staged/styles/watercolor"
    params.styles["watercolor"]["style_set"] = str(tmp_path)
    assert params.run_config("styleid", "watercolor").exemplar == str(tmp_path)


def test_a_methods_own_weights_are_checked_only_for_runs_that_use_them(params, tmp_path):
    params.stylize["vgg19"] = str(tmp_path / "vgg19-dcbb9e9d.pth")
    params.stylize["controlnet"] = None
    assert problems_of(params, ["sms", "styleid"]) == []
    found = problems_of(params, ["gatys", "style_lora_controlnet"])
    assert any(p.startswith("profiles.demo.stylize.vgg19:") and "does not exist" in p and "torchvision" in p
               for p in found)
    assert any(p.startswith("profiles.demo.stylize.controlnet: missing") and "ControlNet" in p for p in found)
    truncated = tmp_path / "control.safetensors"
    truncated.write_bytes(b"\x10\x00")
    params.stylize["controlnet"] = str(truncated)
    [problem] = problems_of(params, ["style_lora_controlnet"])
    assert "profiles.demo.stylize.controlnet" in problem and str(truncated) in problem


def test_profile_method_settings_apply_to_every_run_of_the_method_under_the_runs_own(params):
    assert resolve(params.run_config("gatys", "watercolor")).method_config.iterations == 20
    params.runs["gatys"]["set"] = {"iterations": 7}
    assert resolve(params.run_config("gatys", "watercolor")).method_config.iterations == 7
    assert params.run_config("sms", "watercolor").method_overrides == {}


def test_sms_methods_lists_family_and_style_input_of_every_method(capsys):
    from workflow.cli import main

    assert main(["methods"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line and not line[0].isspace()}
    assert "family: score distillation; style input: prompt + lora" in lines["sms"]
    assert "family: sampling" in lines["styleid"] and "exemplar" in lines["styleid"]
    assert "family: classic; style input: exemplar" in lines["magenta"]
    assert "weights: vgg19" in lines["gatys"] and "weights: controlnet" in lines["style_lora_controlnet"]
    assert "family: sampling" in lines["freestyle"] and "style input: prompt" in lines["freestyle"]


def test_a_generator_run_of_a_method_that_is_not_score_distillation_is_refused(params):
    params.runs["ff_magenta"] = {"method": "magenta", "generator": {}}
    found = [p for p in check_profile(params, ["ff_magenta"]) if p.startswith("runs.ff_magenta.generator")]
    assert found and "'magenta' is a classic method" in found[0]
