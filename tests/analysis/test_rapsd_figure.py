"""analysis/rapsd.py: the script writes PNG + CSV; plot_rapsd draws three panels with the right scales."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from analysis.rapsd import FREQ_LABEL, HIGH_MIN, LOW_MAX, POWER_LABEL, compute_domains, plot_rapsd
from eval.rapsd import high_frequency_ratio

REPO = Path(__file__).resolve().parents[2]
SIZE = 32


def write_domain(folder: Path, smooth: bool, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(3):
        noise = rng.normal(size=(40, 40, 3))
        if smooth:
            noise = gaussian_filter(noise, sigma=(2, 2, 0))
        scaled = (noise - noise.min()) / (noise.max() - noise.min()) * 255
        Image.fromarray(scaled.astype(np.uint8)).save(folder / f"{index}.png")
    return folder


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("rapsd")
    return write_domain(root / "noise", smooth=False, seed=1), write_domain(root / "smooth", smooth=True, seed=2)


def read_curves(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_script_writes_a_png_and_the_curves_as_csv(domains, tmp_path):
    out = tmp_path / "fig" / "rapsd.png"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # must find its packages by itself
    result = subprocess.run([sys.executable, "analysis/rapsd.py", *map(str, domains), "--labels", "noise", "smooth",
                             "--out", str(out), "--size", str(SIZE), "--band", "0.2", "0.8"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 3 * image.height / 2
    rows = read_curves(out.with_suffix(".csv"))
    assert list(rows[0]) == ["domain", "n", "freq", "mean", "low", "high"]
    assert [r["domain"] for r in rows] == ["noise"] * (SIZE // 2) + ["smooth"] * (SIZE // 2)
    assert {r["n"] for r in rows} == {"3"}
    freqs = [float(r["freq"]) for r in rows[: SIZE // 2]]
    assert freqs == pytest.approx(np.arange(SIZE // 2) / SIZE)
    for row in rows:
        assert float(row["low"]) <= float(row["mean"]) + 1e-12 and float(row["mean"]) <= float(row["high"]) + 1e-12
    high = {d: sum(float(r["mean"]) for r in rows if r["domain"] == d and float(r["freq"]) >= HIGH_MIN)
            for d in ("noise", "smooth")}
    assert high["smooth"] < 0.1 * high["noise"]  # blurring removes high-frequency power
    assert "smooth: n=3" in result.stdout
    assert f"preprocessing: centre-square-{SIZE}-bicubic;" in result.stdout


def test_plot_rapsd_draws_three_panels_with_their_scales_labels_and_bands(domains, tmp_path):
    spectra = compute_domains(list(domains), ["noise", "smooth"], size=SIZE)
    figure = plot_rapsd(spectra, tmp_path / "rapsd.pdf")
    assert (tmp_path / "rapsd.pdf").read_bytes().startswith(b"%PDF")
    axes = figure.get_axes()
    assert [(ax.get_xscale(), ax.get_yscale()) for ax in axes] == [("linear", "linear"), ("log", "log"),
                                                                   ("linear", "linear")]
    assert [ax.get_xlabel() for ax in axes] == [FREQ_LABEL] * 3 == ["frequency (cycles/pixel)"] * 3
    assert [ax.get_ylabel() for ax in axes] == [POWER_LABEL] * 3 == ["power"] * 3
    assert [ax.get_title()[:3] for ax in axes] == ["(a)", "(b)", "(c)"]
    legend = axes[1].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["noise (n=3)", "smooth (n=3)"]
    for ax in axes:
        assert len(ax.get_lines()) == 2 and len(ax.collections) == 2  # a mean curve and a band per domain
    low_x, full_x, high_x = (np.concatenate([line.get_xdata() for line in ax.get_lines()]) for ax in axes)
    assert low_x.max() <= LOW_MAX and low_x.min() > 0
    assert full_x.min() > 0 and full_x.max() == pytest.approx((SIZE // 2 - 1) / SIZE)
    assert high_x.min() >= HIGH_MIN


def test_an_empty_domain_folder_is_a_clear_error(domains, tmp_path, capsys):
    from analysis.rapsd import main

    (tmp_path / "empty").mkdir()
    argv = [str(domains[0]), str(tmp_path / "empty"), "--labels", "a", "b", "--out", str(tmp_path / "f.png")]
    assert main(argv) == 2
    assert f"error: no images in {tmp_path / 'empty'} (domain 'b')" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def test_non_square_images_are_cropped_to_the_centre_square_not_stretched(tmp_path):
    folder = tmp_path / "ring"
    folder.mkdir()
    y, x = np.mgrid[:64, :128]
    ring = np.round(127.5 + 127.5 * np.cos(2 * np.pi * 0.125 * np.hypot(y - 32, x - 64))).astype(np.uint8)
    Image.fromarray(ring).save(folder / "wide.png")
    Image.fromarray(ring.T.copy()).save(folder / "tall.png")
    spectrum = compute_domains([folder], ["ring"], size=64)["ring"]
    assert spectrum.n == 2
    assert spectrum.freq[np.argmax(spectrum.mean)] == pytest.approx(0.125, abs=1 / 64)
    assert high_frequency_ratio(spectrum.mean, spectrum.freq, cutoff=HIGH_MIN) < 0.01  # stretched to 64²: 0.16
