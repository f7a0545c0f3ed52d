import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from eval.fid import fid_infinity, frechet_distance, frechet_distance_features
from eval.images import load_rgb, to_tensor
from eval.weights import MetricUnavailable


def closed_form(mu1, s1, mu2, s2) -> float:
    root1 = linalg.sqrtm(s1).real
    cross = linalg.sqrtm(root1 @ s2 @ root1).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * cross))


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def test_frechet_distance_equals_closed_form_on_known_parameters():
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 0.5])
    s1, s2 = np.eye(3), np.diag([4.0, 1.0, 0.25])
    # diagonal case: |Δμ|² + Σ(σ1 − σ2)² = 1.25 + 1 + 0 + 0.25
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(2.5, abs=1e-10)
    rng = np.random.default_rng(0)
    s1, s2 = random_spd(rng, 5), random_spd(rng, 5)
    mu2 = rng.normal(size=5)
    assert frechet_distance(np.zeros(5), s1, mu2, s2) == pytest.approx(closed_form(np.zeros(5), s1, mu2, s2), rel=1e-9)


def test_fid_of_gaussian_samples_matches_closed_form_within_sampling_error():
    rng = np.random.default_rng(1)
    d, n = 4, 20000
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = closed_form(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    # bias + noise of the plug-in estimate at n = 20,000 in 4 dims is well under 0.05
    assert frechet_distance_features(x, y) == pytest.approx(expected, abs=0.05)


def test_identical_sets_give_zero():
    rng = np.random.default_rng(2)
    many = rng.normal(size=(200, 8))  # n > d: sqrtm route
    few = rng.normal(size=(10, 64))  # n < d: low-rank route
    assert abs(frechet_distance_features(many, many)) < 1e-8
    assert abs(frechet_distance_features(few, few)) < 1e-8


def test_low_rank_route_equals_sqrtm_route():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 48)), rng.normal(1.0, 2.0, size=(40, 48))
    via_sqrtm = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance_features(x, y) == pytest.approx(via_sqrtm, rel=1e-6)


def test_fid_infinity_is_refused_below_5000_images():
    rng = np.random.default_rng(4)
    with pytest.raises(MetricUnavailable, match="5000"):
        fid_infinity(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)), rng)


def test_pytorch_fid_checkpoint_gives_pytorch_fid_features(tmp_path, monkeypatch):
    """The pytorch-fid flavour equals pytorch_fid.InceptionV3 (pool3, 2048) loaded with the same weights."""
    inception = pytest.importorskip("pytorch_fid.inception")
    from eval.inception import InceptionFeatures

    torch.manual_seed(0)
    trunk = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    for module in trunk.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running stats := this batch's, so random features are O(1)
    with torch.no_grad():
        trunk.train()(torch.rand(2, 3, 80, 80))
    state = trunk.state_dict()
    torch.save(state, tmp_path / "pt_inception.pth")
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: state)
    # resize_input=False keeps the forward at 80² (fast); the 299² resize is checked through prepare()
    reference = inception.InceptionV3([3], resize_input=False).eval()

    ours = InceptionFeatures(tmp_path / "pt_inception.pth")
    assert ours.flavour == "pytorch-fid" and ours.rule == "299-bilinear-pm1"
    image = torch.rand(1, 3, 80, 80)
    with torch.no_grad():
        expected = reference(image)[0].flatten(1)
        got = ours.model(2 * image - 1)
    assert expected.abs().mean() > 0.05
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / "x.png")
    pixels = to_tensor(load_rgb(tmp_path / "x.png"))
    resized = torch.nn.functional.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours.prepare(tmp_path / "x.png"), 2 * resized - 1)
