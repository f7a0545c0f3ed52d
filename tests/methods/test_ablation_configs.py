"""Named ablations resolve to the intended method/loop settings."""
from __future__ import annotations

import pytest

from sms.ablations import ABLATIONS, ablation_run
from sms.config import resolve
from sms.method import Prompts

PROMPTS = Prompts(style="watercolor style", caption="a dog")
REQUIRED = {"sm_only", "sm+psr", "sm+sagr", "full", "full_uniform_t", "full_linear_t", "id_none", "id_latent_mse",
            "id_psr_fixed", "id_fft_lowpass", "id_psr", "lambda_0", "lambda_1e-4", "lambda_2e-4", "lambda_5e-4",
            "lambda_1e-3", "lambda_2e-3"}


def resolved(name, **loop):
    return resolve(ablation_run(name, PROMPTS, loop_overrides=loop))


def test_all_required_entries_exist_and_resolve():
    assert REQUIRED <= set(ABLATIONS)
    for name in ABLATIONS:
        run = resolved(name)
        assert run.run.prompts == PROMPTS and run.loop.iters == 500


@pytest.mark.parametrize("name,relevance,identity,sampler", [
    ("sm_only", False, "none", "ans"), ("sm+psr", False, "psr", "ans"), ("sm+sagr", True, "none", "ans"),
    ("full", True, "psr", "ans"), ("full_uniform_t", True, "psr", "uniform"), ("full_linear_t", True, "psr", "linear"),
    ("id_latent_mse", True, "latent_mse", "ans"), ("id_fft_lowpass", True, "fft_lowpass", "ans"),
])
def test_entries_set_what_their_names_say(name, relevance, identity, sampler):
    run = resolved(name)
    assert run.run.method == "sms"
    assert (run.method_config.relevance, run.loop.identity, run.method_config.t_sampler) == (relevance, identity, sampler)


def test_lambda_sweep_and_extra_overrides():
    values = {name: resolved(name).loop.lambda_identity for name in ABLATIONS if name.startswith("lambda_")}
    assert values == {"lambda_0": 0.0, "lambda_1e-4": 1e-4, "lambda_2e-4": 2e-4, "lambda_5e-4": 5e-4,
                      "lambda_1e-3": 1e-3, "lambda_2e-3": 2e-3}
    assert resolved("sm_only", iters=3, identity="psr").loop.identity == "psr"
    with pytest.raises(KeyError, match="unknown ablation"):
        ablation_run("nope", PROMPTS)
