"""params.yaml → one RunConfig per (run, style) cell, as the DVC stylise stages build them."""
from pathlib import Path

import pytest
import yaml

from sms.config import resolve
from sms.pipeline import load_params, run_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def test_demo_is_the_default_profile_and_offline(params):
    assert params["profile_name"] == "demo"
    assert params["active"]["model"] == "tiny" and params["active"]["device"] == "cpu"
    assert "not the paper" in params["active"]["label"]


def test_every_run_resolves_for_every_style(params):
    for run_name in params["runs"]:
        for style_name in params["active"]["styles"]:
            resolved = resolve(run_config(params, run_name, style_name))
            assert resolved.loop.iters == params["active"]["iters"]
            assert resolved.loop.resolution == params["active"]["resolution"]


def test_cells_carry_their_settings(params):
    style = next(iter(params["active"]["styles"]))
    sweep = {name: resolve(run_config(params, name, style)).loop.lambda_identity
             for name in params["runs"] if name.startswith("lambda_")}
    assert sweep == {"lambda_0": 0.0, "lambda_1e-4": 1e-4, "lambda_2e-4": 2e-4, "lambda_1e-3": 1e-3, "lambda_2e-3": 2e-3}
    assert resolve(run_config(params, "sms", style)).loop.lambda_identity == 5e-4  # the style's own λ
    assert resolve(run_config(params, "dds_style_prior", style)).method_config.prior == "style"
    sm_only = resolve(run_config(params, "abl_sm_only", style))
    assert sm_only.method_config.relevance is False and sm_only.loop.identity == "none"
    assert resolve(run_config(params, "abl_full_linear_t", style)).method_config.t_sampler == "linear"


def test_dvc_stages_cover_every_run():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert list(pipeline["stages"]) == ["stage", "prepare", "stylize", "metrics", "analysis"]
    assert pipeline["stages"]["stylize"]["foreach"] == "${runs}"
    assert pipeline["stages"]["stylize"]["do"]["outs"][0]["results/${key}"]["persist"] is True
    assert "analytics = false" in (ROOT / ".dvc" / "config").read_text()


def test_a_profile_can_switch_on_the_speed_options(params):
    import copy

    style = next(iter(params["active"]["styles"]))
    assert run_config(params, "sms", style).model.tf32 is False  # demo: none set
    fast = copy.deepcopy(params)
    fast["active"].update(dtype="bfloat16", tf32=True, channels_last=True, compile=True, compile_mode="max-autotune")
    model = run_config(fast, "sms", style).model
    assert (model.dtype, model.tf32, model.channels_last, model.compile, model.compile_mode) == \
        ("bfloat16", True, True, True, "max-autotune")
