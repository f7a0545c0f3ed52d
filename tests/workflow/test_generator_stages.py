"""Feed-forward runs in the pipeline (issue 14): a run with `generator:` trains G_θ per style on the
profile's training content (staged), then stylises the prepared content with it in the per-image format;
a rerun keeps both; `sms check` refuses a generator run the active profile cannot train."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from workflow import generator_stages, stages
from workflow.check import check_profile
from workflow.params import Params

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["runs"] = {"ff_sms": raw["runs"]["ff_sms"]}
    demo = raw["profiles"]["demo"]
    demo["metrics"]["standin_weights"] = False
    demo["generator"]["train_content"]["limit"] = 2
    demo["generator"]["train"].update(steps=4, checkpoint_every=2)
    return Params(raw, tmp_path / "params.yaml")


def test_a_generator_run_trains_then_stylises_the_prepared_content(params, capsys):
    stages.stage(params)
    stages.prepare(params)
    assert generator_stages.stylize(params, "ff_sms", progress=False) == 0
    out = Path("results/ff_sms/watercolor")
    prepared = json.loads(Path("data/prepared/content/manifest.json").read_text())["records"]
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(Path(r["path"]).stem for r in prepared)
    manifest = json.loads((out / "manifest.json").read_text())["records"]
    assert {r["method"] for r in manifest} == {"ff_sms"} and {r["style"] for r in manifest} == {"watercolor"}
    trained = Path("results/ff_sms/_generator/watercolor")
    record = json.loads((trained / "training.json").read_text())
    assert record["status"] == "finished" and record["data"]["images"] == 2
    assert record["train"]["short_side"] == 64 and record["train"]["steps"] == 4      # content size; params
    sidecar = json.loads((out / f"{Path(prepared[0]['path']).stem}.json").read_text())
    assert sidecar["generator"]["training_digest"] == record["config_digest"]
    assert "trained 4 steps" in capsys.readouterr().out
    assert generator_stages.stylize(params, "ff_sms", progress=False) == 0
    again = capsys.readouterr().out
    assert "generator kept (finished)" in again and f"wrote 0, kept {len(prepared)} finished" in again


def test_check_refuses_what_the_profile_cannot_train(params):
    params.profile["generator"]["train"]["stpes"] = 3
    problems = check_profile(params, ["ff_sms"])
    assert any("runs.ff_sms.generator" in p and "stpes" in p and "steps" in p for p in problems), problems
    del params.profile["generator"]
    problems = check_profile(params, ["ff_sms"])
    assert any("has no `generator:` section" in p for p in problems), problems
