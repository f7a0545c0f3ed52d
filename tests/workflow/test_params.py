"""params.yaml: validated as a whole (every problem listed), and every run of every profile resolves."""
import copy
from pathlib import Path

import pytest
import yaml

from sms.config import resolve
from workflow.discovery import load_methods
from workflow.errors import UserError
from workflow.params import Params, load_params
from workflow.schema import validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw():
    load_methods()
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def profile_params(raw, name: str) -> Params:
    data = copy.deepcopy(raw)
    data["profile"] = name
    assert validate(data, ROOT) == []
    return Params(data, ROOT / "params.yaml")


def test_demo_is_the_default_profile_and_offline():
    params = load_params(ROOT / "params.yaml")
    assert params.profile_name == "demo"
    assert params.stylize["model"] == "tiny" and params.stylize["device"] == "cpu"
    assert "not the paper" in params.profile["label"]


@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_every_run_of_every_profile_resolves_for_every_style(raw, profile):
    params = profile_params(raw, profile)
    for run_name in params.runs:
        for style_name in params.styles:
            resolved = resolve(params.run_config(run_name, style_name))
            assert resolved.loop.resolution == params.stylize["resolution"]
            if params.stylize.get("iters"):
                assert resolved.loop.iters == params.stylize["iters"]
            assert resolved.run.model.base == params.stylize["model"]


def test_runs_carry_their_settings(raw):
    params = profile_params(raw, "paper")
    sweep = {name: resolve(params.run_config(name, "watercolor")).loop.lambda_identity
             for name, entry in params.runs.items() if "lambda" in entry.get("tables", {}) and name != "sms"}
    assert sweep == {"lambda_0": 0.0, "lambda_1e-4": 1e-4, "lambda_2e-4": 2e-4, "lambda_1e-3": 1e-3, "lambda_2e-3": 2e-3}
    assert resolve(params.run_config("sms", "pixel")).loop.lambda_identity == 2e-4  # the style's own λ
    assert resolve(params.run_config("dds_style_prior", "oil")).method_config.prior == "style"
    sm_only = resolve(params.run_config("abl_sm_only", "kids"))
    assert sm_only.method_config.relevance is False and sm_only.loop.identity == "none"
    assert resolve(params.run_config("abl_full_linear_t", "oil")).method_config.t_sampler == "linear"
    assert resolve(params.run_config("id_latent_mse", "oil")).loop.identity == "latent_mse"


def test_paper_paths_are_expanded_so_the_library_never_sees_a_tilde(raw):
    params = profile_params(raw, "paper")
    spec = params.model_spec("watercolor")
    assert spec.style_lora == str(Path.home() / "weights/lora/watercolor_21173.safetensors")
    assert spec.style_base.startswith(str(Path.home()))
    assert params.styles["oil"]["style_set"] == str(Path.home() / "data/oil")
    assert spec.base == "stable-diffusion-v1-5/stable-diffusion-v1-5"  # a hub id stays as written


def test_every_problem_is_listed_at_once_with_its_key_and_a_suggestion(raw, tmp_path):
    data = copy.deepcopy(raw)
    data["profiles"]["paper"]["styles"]["oil"]["lor"] = "x.safetensors"
    data["profiles"]["paper"]["stylize"]["dtype"] = "fp8"
    data["profiles"]["demo"]["stylize"]["resolution"] = "64"
    data["runs"]["sms"]["tables"]["mian"] = "SMS"
    data["runs"]["dds"]["sett"] = {}
    data["profile"] = "papr"
    problems = validate(data, tmp_path)
    text = "\n".join(problems)
    assert "profiles.paper.styles.oil.lor: unknown key. Did you mean 'lora'?" in text
    assert "profiles.paper.stylize.dtype: 'fp8' is not one of float32, bfloat16, float16" in text
    assert "profiles.demo.stylize.resolution: expected int, got '64'" in text
    assert "runs.sms.tables.mian: unknown table. Did you mean 'main'?" in text
    assert "runs.dds.sett: unknown key. Did you mean 'set'?" in text
    assert "Did you mean 'paper'?" in text
    assert len(problems) == 6
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="6 problem"):
        load_params(path)


def test_a_profile_can_switch_on_the_speed_options(raw):
    params = profile_params(raw, "demo")
    assert params.run_config("sms", "watercolor").model.tf32 is False
    params.stylize.update(dtype="bfloat16", tf32=True, channels_last=True, compile=True, compile_mode="max-autotune")
    model = params.run_config("sms", "watercolor").model
    assert (model.dtype, model.tf32, model.channels_last, model.compile, model.compile_mode) == \
        ("bfloat16", True, True, True, "max-autotune")
