"""The stage entry points pass the right things to the library: declared runs only, the profile's device,
the staged style sets; a stylise stage with failures finishes the others and exits non-zero."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from sms.runner import RunReport
from workflow import stages
from workflow.params import Params

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    return Params(copy.deepcopy(raw), tmp_path / "params.yaml")


def results_folder(run: str, style: str = "watercolor") -> None:
    folder = Path("results") / run / style
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"records": []}))


def captured_evaluate(monkeypatch) -> dict:
    seen = {}

    def fake(folders, out, **kwargs):
        seen.update(folders=[str(f) for f in folders], out=str(out), **kwargs)
    import eval.run

    monkeypatch.setattr(eval.run, "evaluate", fake)
    return seen


def test_evaluate_reads_declared_runs_only_on_the_profiles_device(params, monkeypatch):
    for run in ("sms", "dds", "removed_run"):
        results_folder(run)
    params.profile["stylize"]["device"] = "cuda:3"
    params.profile["metrics"]["standin_weights"] = False
    seen = captured_evaluate(monkeypatch)
    stages.evaluate(params)
    assert seen["folders"] == ["results/sms/watercolor", "results/dds/watercolor"]
    assert seen["device"] == "cuda:3" and seen["out"] == "reports/metrics"
    assert {k: str(v) for k, v in seen["style_sets"].items()} == {
        "watercolor": "data/staged/styles/watercolor/manifest.json"}
    params.profile["metrics"]["device"] = "cpu"
    stages.evaluate(params)
    assert seen["device"] == "cpu"


def test_a_stylise_stage_with_failures_finishes_every_style_and_exits_one(params, monkeypatch, capsys):
    params.profile["styles"]["oil"] = dict(params.profile["styles"]["watercolor"], prompt="oil painting")
    prepared = Path("data/prepared/content")
    prepared.mkdir(parents=True)
    (prepared / "manifest.json").write_text(json.dumps({"records": [{"path": "a.png"}, {"path": "b.png"}]}))
    calls = []

    def fake_stylize(paths, config, out_dir, **kwargs):
        calls.append(kwargs["style_name"])
        failed = {str(paths[1]): "RuntimeError: CUDA out of memory"} if kwargs["style_name"] == "watercolor" else {}
        return RunReport(written=["a"], failed=failed)
    import sms.runner

    monkeypatch.setattr(stages, "require_valid", lambda *args, **kwargs: None)
    monkeypatch.setattr(sms.runner, "stylize_files", fake_stylize)
    assert stages.stylize(params, "sms") == 1
    assert calls == ["watercolor", "oil"]   # the failure did not stop the next style
    err = capsys.readouterr().err
    assert "1 image(s) failed" in err and "watercolor/data/prepared/content/b.png: RuntimeError" in err
