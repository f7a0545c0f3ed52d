"""The rehearsal: the *paper* profile's code path end to end, offline, with user-shaped files fabricated from
the tiny models (README, "for the paper": the same dry run with your own files before spending GPU hours).

`sms check` passes; `dvc repro` stages DIV2K from its zip, stylises with a single-file base and a diffusers
style base + kohya LoRAs given as `~/…`, evaluates against nested style folders and writes the report; a
second `dvc repro` recomputes nothing; replacing a LoRA in place recomputes exactly the images that use it.
The feed-forward run trains the default (≈ 43.7 MB) generator per style on a user's folder of photos.
"""
from __future__ import annotations

import json

import pytest
import yaml
from rehearsal_files import fabricate
from rehearsal_project import ROOT, environment, make_project, run, stages_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]   # the module fixture runs `dvc repro` twice
# a method, a baseline with settings, a λ point, a generator, and one baseline of each other family and input
RUNS = ("sms", "dds_style_prior", "lambda_1e-4", "ff_sms", "styleid", "style_lora_controlnet", "magenta", "gatys")
USES_LORA = ("sms", "dds_style_prior", "lambda_1e-4", "ff_sms", "style_lora_controlnet")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    base = tmp_path_factory.mktemp("rehearsal")
    home = base / "home"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "paper"
    params["profiles"]["paper"] = fabricate(home)
    params["runs"] = {name: params["runs"][name] for name in RUNS}
    project = make_project(base / "project", params)
    env = environment(project, home=home)
    check = run(["sms", "check"], project, env)
    first = run(["dvc", "repro"], project, env)
    second = run(["dvc", "repro"], project, env)
    return project, home, env, check, first, second


def test_sms_check_passes_on_the_user_files(rehearsal):
    _, _, _, check, _, _ = rehearsal
    assert "profile 'paper'" in check.stdout and f"{len(RUNS)} runs × 2 styles resolve" in check.stdout


def test_dvc_repro_runs_every_stage_and_writes_the_report(rehearsal):
    project, _, _, _, first, _ = rehearsal
    ran = stages_run(first.stdout)
    assert {"check", "stage", "prepare", "evaluate", "analysis"} <= set(ran)
    assert {f"stylize@{run}" for run in RUNS} <= set(ran) and {f"metrics@{run}" for run in RUNS} <= set(ran)
    report = (project / "reports" / "paper" / "report.md").read_text()
    assert "rehearsal: the paper profile's code path" in report
    for run_name in RUNS:
        for style in ("watercolor", "pixel"):
            outputs = sorted((project / "results" / run_name / style).glob("*.png"))
            assert [p.stem for p in outputs] == ["0801", "0802"]


def test_weights_came_from_the_users_files(rehearsal):
    project, home, _, _, _, _ = rehearsal
    sidecar = json.loads((project / "results" / "sms" / "pixel" / "0801.json").read_text())
    model = sidecar["config"]["model"]
    assert model["base"] == str(home / "weights" / "tiny-base.safetensors")       # ~ expanded
    assert model["style_base"] == str(home / "weights" / "tiny-style-base")
    assert model["style_lora"] == str(home / "weights" / "lora" / "pixel_kohya.safetensors")
    assert sidecar["models"]["style_lora"] and len(sidecar["models"]["style_lora"]) == 64   # sha256 of the file
    assert sidecar["environment"]["device"] == "cpu" and sidecar["iterations"] == 2


def test_the_other_baselines_ran_on_the_users_weights_and_exemplars(rehearsal):
    project, home, _, _, _, _ = rehearsal
    from sms.hashing import sha256_file

    def sidecar(run_name, style="pixel"):
        return json.loads((project / "results" / run_name / style / "0801.json").read_text())

    controlnet = sidecar("style_lora_controlnet")
    assert controlnet["family"] == "sampling" and controlnet["iterations"] == 4          # method_settings applied
    assert controlnet["models"]["controlnet"] == sha256_file(home / "weights" / "control_v11p_sd15_canny.safetensors")
    assert controlnet["unet_forwards"]["total"] == 4 * 2 * 2                            # UNet + ControlNet rows, CFG
    styleid = sidecar("styleid")
    assert styleid["exemplar"]["path"] == str(home / "data" / "exemplars" / "pixel_exemplar.png")
    assert {"seconds_inversion", "seconds_sampling"} <= set(styleid["timings"])
    assert "style_lora" not in styleid["config"]["model"] and styleid["unet_forwards"]["total"] == 3 * 4
    drawn = sidecar("styleid", "watercolor")["exemplar"]["path"]
    assert drawn.startswith(str(home / "data" / "styles" / "watercolor")) and "broken" not in drawn
    gatys = sidecar("gatys")
    assert gatys["family"] == "classic" and gatys["iterations"] == 3
    assert gatys["models"]["vgg19"] == sha256_file(home / "weights" / "vgg19-dcbb9e9d.pth")
    assert sidecar("magenta")["unet_forwards"]["total"] == 0
    rows = {line.split("|")[1].strip() for line in (project / "reports" / "paper" / "tables" / "main.md").read_text()
            .splitlines() if line.startswith("|")}
    assert {"StyleID", "Style-LoRA", "Magenta (Ghiasi 2017)", "Gatys (2016)"} <= rows


def test_staging_records_the_checksum_override_and_the_unreadable_reference(rehearsal):
    project, _, _, _, _, _ = rehearsal
    content = json.loads((project / "data" / "staged" / "content" / "manifest.json").read_text())
    assert "not the official archive" in json.dumps(content)
    styles = json.loads((project / "data" / "staged" / "styles" / "watercolor" / "manifest.json").read_text())
    files = {record["file"] for record in styles["records"]}
    assert files == {"series_a/art_0.jpg", "series_a/art_1.jpg", "series_a/art_2.jpg", "series_b/loop.gif",
                     "series_b/more/deep.png"}
    assert [skip["file"] for skip in styles["skipped"]] == ["series_b/broken.png"]


def test_metrics_ran_on_the_staged_style_sets_with_the_users_backbones(rehearsal):
    project, _, _, _, _, _ = rehearsal
    per_run = json.loads((project / "reports" / "metrics" / "runs" / "sms.json").read_text())
    assert set(per_run) == {"watercolor", "pixel"}
    assert {"lpips", "fid", "clip_score", "seconds_per_image"} <= set(per_run["pixel"])
    aggregate = (project / "reports" / "metrics" / "aggregate.csv").read_text()
    assert "sms,pixel,fid," in aggregate and "N=2:ref=5" in aggregate   # FID against the five readable images


def test_generators_trained_on_the_users_folder(rehearsal):
    project, home, _, _, _, _ = rehearsal
    for style in ("watercolor", "pixel"):
        record = json.loads((project / "results" / "ff_sms" / "_generator" / style / "training.json").read_text())
        assert record["status"] == "finished" and record["train"]["steps"] == 3
        assert record["data"]["images"] == 5       # 3 .jpg, a nested .png and a .gif; broken.png left out at staging
        assert 40 < record["generator"]["fp32_megabytes"] < 46
        assert record["run"]["model"]["style_lora"].startswith(str(home / "weights" / "lora"))


def test_a_second_repro_recomputes_nothing(rehearsal):
    _, _, _, _, _, second = rehearsal
    assert stages_run(second.stdout) == ["check"]   # validation + cached hashes only


def test_replacing_a_lora_in_place_recomputes_exactly_its_images(rehearsal):
    project, home, env, _, _, _ = rehearsal
    from safetensors.torch import save_file

    from sms.models.tiny import build_tiny_unet, tiny_style_lora_state_dict

    before = {path: path.stat().st_mtime_ns for path in (project / "results").rglob("0801.png")}
    lora = home / "weights" / "lora" / "watercolor_kohya.safetensors"
    save_file(tiny_style_lora_state_dict(build_tiny_unet(), seed=99), str(lora))
    assert stages_run(run(["dvc", "status"], project, env).stdout) == []
    third = run(["dvc", "repro"], project, env)
    assert {f"stylize@{run}" for run in RUNS} <= set(stages_run(third.stdout))
    after = {path: path.stat().st_mtime_ns for path in before}
    changed = {path.relative_to(project / "results").parent.as_posix() for path in before if after[path] != before[path]}
    assert changed == {f"{run}/watercolor" for run in USES_LORA}   # StyleID, Magenta, Gatys take no LoRA
