"""DVC re-runs what changed and nothing else: each stage tracks only the params it reads (of the active
profile) and the code it runs. Checked with `dvc status` on a project whose outputs are committed as is."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rehearsal"))
from rehearsal_project import ROOT, environment, make_project, run  # noqa: E402

ALWAYS = {"check"}   # validates and hashes external weight files on every repro (DVC cannot watch them)


@pytest.fixture
def project(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    where = make_project(tmp_path / "project", params)
    outs = ["build/locks/stylize.json", "build/locks/metrics.json", "data/staged/content/manifest.json",
            "data/staged/train_content/manifest.json", "data/staged/styles/watercolor/manifest.json", "data/staged/metric_weights/weights.json",
            "data/prepared/content/manifest.json", "reports/metrics/per_image.csv",
            "reports/metrics/aggregate.csv", "reports/paper/report.md",
            *[f"results/{run}/watercolor/manifest.json" for run in params["runs"]],
            *[f"reports/metrics/runs/{run}.json" for run in params["runs"]]]
    for out in outs:
        (where / out).parent.mkdir(parents=True, exist_ok=True)
        (where / out).write_text("{}\n")
    env = environment(where)
    run(["dvc", "commit", "-f", "-q"], where, env)
    return where, env


def changed(project) -> set[str]:
    where, env = project
    return set(json.loads(run(["dvc", "status", "--json"], where, env).stdout)) - ALWAYS


def edit_params(project, change) -> None:
    path = project[0] / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))


def test_committed_project_is_up_to_date(project):
    assert changed(project) == set()


def test_editing_the_paper_profile_leaves_the_demo_up_to_date(project):
    def change(params):
        paper = params["profiles"]["paper"]
        paper["stylize"]["resolution"] = 768
        paper["styles"]["oil"]["lambda"] = 1e-3
        paper["metrics"]["bootstrap"] = 5
    edit_params(project, change)
    assert changed(project) == set()


def test_editing_one_run_marks_that_stylise_stage_and_what_reads_its_results(project):
    edit_params(project, lambda params: params["runs"]["dds"].update(set={"guidance_scale": 5.0}))
    assert changed(project) == {"stylize@dds", "evaluate", "analysis"}


def test_metric_settings_rerun_only_the_metrics(project):
    edit_params(project, lambda params: params["profiles"]["demo"]["metrics"].update(bootstrap=50))
    assert changed(project) == {"evaluate"}


def test_content_settings_rerun_the_data_stages_and_everything_after(project):
    edit_params(project, lambda params: params["profiles"]["demo"]["content"].update(limit=2))
    assert changed(project) == {"stage", "prepare"}   # the rest follows when their inputs' hashes change


def test_executor_settings_rerun_nothing(project):   # where images run never changes a result
    edit_params(project, lambda params: params["profiles"]["demo"].update(executor={"kind": "ray", "workers": 2}))
    assert changed(project) == set()


@pytest.mark.parametrize("file, expected", [
    ("workflow/cli.py", set()),                       # CLI help or glue reruns nothing
    ("workflow/ray_executor.py", set()),
    ("eval/fid.py", {"evaluate"}),
    ("analysis/tables.py", {"analysis"}),
    ("baselines/dds.py", {f"stylize@{run}" for run in yaml.safe_load((ROOT / "params.yaml").read_text())["runs"]}),
])
def test_editing_code_reruns_the_stages_that_run_it(project, file, expected):
    path = project[0] / file
    path.write_text(path.read_text() + "\n# edited\n")
    assert changed(project) == expected
