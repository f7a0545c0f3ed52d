import numpy as np
import pytest
from PIL import Image

from eval.rapsd import (
    DomainSpectrum,
    centre_square,
    domain_spectrum,
    high_frequency_ratio,
    image_spectrum,
    load_image_array,
    rapsd,
)


def power_law_field(beta: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f^beta."""
    fx = np.fft.fftfreq(size)
    radius = np.sqrt(fx[:, None] ** 2 + fx[None, :] ** 2)
    radius[0, 0] = np.inf
    spectrum = np.fft.fft2(rng.normal(size=(size, size))) * radius ** (-beta / 2)
    return np.fft.ifft2(spectrum).real


def loglog_slope(power, freq, lo=0.02, hi=0.4) -> float:
    keep = (freq >= lo) & (freq <= hi)
    return float(np.polyfit(np.log(freq[keep]), np.log(power[keep]), 1)[0])


def test_ring_count_and_frequencies_follow_pysteps_convention():
    for shape, rings in [((64, 64), 32), ((65, 65), 33), ((40, 70), 35), ((71, 30), 36)]:
        power, freq = rapsd(np.random.default_rng(0).normal(size=shape))
        assert len(power) == len(freq) == rings
        np.testing.assert_array_equal(freq, np.fft.fftfreq(max(shape))[:rings])


def test_white_noise_spectrum_is_flat():
    rng = np.random.default_rng(1)
    field = rng.normal(size=(256, 256))
    power, freq = rapsd(field)
    # E|FFT|²/(MN) = σ² = 1 at every frequency
    assert np.mean(power[1:]) == pytest.approx(1.0, rel=0.02)
    assert abs(loglog_slope(power, freq)) < 0.05
    assert np.max(np.abs(power[8:] - 1)) < 0.3


def test_sinusoid_peaks_at_its_ring():
    size, cycles = 64, 8
    x = np.arange(size)
    field = np.sin(2 * np.pi * cycles * x / size)[None, :] * np.ones((size, 1))
    power, freq = rapsd(field)
    assert np.argmax(power) == cycles
    assert freq[cycles] == pytest.approx(cycles / size)
    assert power[cycles] > 1e6 * np.delete(power, cycles).max()


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_power_law_slope_is_recovered(beta):
    field = power_law_field(beta, 256, np.random.default_rng(int(beta)))
    power, freq = rapsd(field)
    assert loglog_slope(power, freq) == pytest.approx(-beta, abs=0.1)


def test_normalize_sums_to_one():
    power, _ = rapsd(np.random.default_rng(2).normal(size=(32, 32)), normalize=True)
    assert power.sum() == pytest.approx(1.0, abs=1e-12)


def test_matches_pysteps_rapsd():
    spectral = pytest.importorskip("pysteps.utils.spectral")
    rng = np.random.default_rng(3)
    for shape in [(64, 64), (63, 64), (65, 65), (40, 70)]:
        field = rng.normal(size=shape)
        for normalize in (False, True):
            ours, freq = rapsd(field, normalize=normalize)
            ref, ref_freq = spectral.rapsd(field, fft_method=np.fft, return_freq=True, normalize=normalize)
            np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=0)
            np.testing.assert_allclose(freq, ref_freq, rtol=0, atol=1e-15)


def test_image_spectrum_preprocessing_options(tmp_path):
    rng = np.random.default_rng(4)
    rgb = rng.random((48, 48, 3))
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    grey_power, _ = image_spectrum(rgb, size=None, normalize=False)
    np.testing.assert_allclose(grey_power, rapsd(luma - luma.mean())[0], rtol=1e-12)

    colour_power, _ = image_spectrum(rgb, grey=False, size=None, normalize=False)
    per_channel = [rapsd(rgb[..., c] - rgb[..., c].mean())[0] for c in range(3)]
    np.testing.assert_allclose(colour_power, np.mean(per_channel, axis=0), rtol=1e-12)

    with_mean, _ = image_spectrum(rgb, remove_mean=False, size=None, normalize=False)
    assert with_mean[0] == pytest.approx(luma.mean() ** 2 * luma.size)  # DC ring: |sum|²/(MN)
    np.testing.assert_allclose(with_mean[1:], grey_power[1:], rtol=1e-12)

    as_uint8 = (rgb * 255).round().astype(np.uint8)
    Image.fromarray(as_uint8).save(tmp_path / "x.png")
    from_path, freq = image_spectrum(tmp_path / "x.png", size=32)
    from_array, _ = image_spectrum(as_uint8, size=32)
    from_pil, _ = image_spectrum(Image.fromarray(as_uint8), size=32)
    np.testing.assert_allclose(from_path, from_array, rtol=1e-12)
    np.testing.assert_allclose(from_pil, from_array, rtol=1e-12)
    assert len(freq) == 16 and from_path.sum() == pytest.approx(1.0)


def test_domain_spectrum_band_and_mean():
    rng = np.random.default_rng(5)
    images = [rng.random((32, 32)) * scale for scale in (0.5, 1.0, 2.0)]
    result = domain_spectrum(images, band=(0.0, 1.0), size=None, normalize=False)
    assert isinstance(result, DomainSpectrum) and result.n == 3
    spectra = np.stack([image_spectrum(im, size=None, normalize=False)[0] for im in images])
    np.testing.assert_allclose(result.mean, spectra.mean(0))
    np.testing.assert_allclose(result.low, spectra.min(0))
    np.testing.assert_allclose(result.high, spectra.max(0))
    assert np.all(result.low <= result.mean) and np.all(result.mean <= result.high)
    with pytest.raises(ValueError, match="size"):
        domain_spectrum([rng.random((32, 32)), rng.random((40, 40))], size=None)


def test_high_frequency_ratio():
    freq = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    power = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    assert high_frequency_ratio(power, freq, cutoff=0.25) == pytest.approx(0.5)
    white, wfreq = rapsd(np.random.default_rng(6).normal(size=(128, 128)))
    smooth, sfreq = rapsd(power_law_field(3.0, 128, np.random.default_rng(7)))
    assert high_frequency_ratio(smooth, sfreq) < 0.01 < high_frequency_ratio(white, wfreq)


def centred_wave(shape: tuple[int, int], kind: str, freq: float = 0.125) -> np.ndarray:
    """A ring or plane wave at ``freq`` cycles/pixel in [0, 1], phase zero at the image centre."""
    height, width = shape
    y, x = np.mgrid[:height, :width]
    distance = {"ring": np.hypot(y - height / 2, x - width / 2), "rows": y - height / 2, "columns": x - width / 2}
    return 0.5 + 0.5 * np.cos(2 * np.pi * freq * distance[kind])


@pytest.mark.parametrize("kind", ["ring", "rows", "columns"])
@pytest.mark.parametrize("shape", [(256, 512), (512, 256), (300, 600), (600, 300)])
def test_non_square_images_keep_their_frequencies(shape, kind):
    side = min(shape)
    for size in (256, None):
        bins = size or side  # the working grid: a resize multiplies every frequency by side/size
        power, freq = image_spectrum(centred_wave(shape, kind), size=size)
        square_power, square_freq = image_spectrum(centred_wave((side, side), kind), size=size)
        assert len(freq) == bins // 2
        assert freq[np.argmax(power)] * bins / side == pytest.approx(0.125, abs=1 / side)  # ± one working bin
        square_ratio = high_frequency_ratio(square_power, square_freq)
        assert square_ratio < 0.01
        assert high_frequency_ratio(power, freq) == pytest.approx(square_ratio, abs=1e-9)


def test_centre_square_crops_the_long_side_evenly():
    image = np.arange(5 * 8 * 3).reshape(5, 8, 3)
    np.testing.assert_array_equal(centre_square(image), image[:, 1:6])
    np.testing.assert_array_equal(centre_square(image.transpose(1, 0, 2)), image.transpose(1, 0, 2)[1:6])
    np.testing.assert_array_equal(centre_square(image[:, :5]), image[:, :5])


def test_images_are_decoded_by_the_suite_decoder(tmp_path):
    from sms.images import decode_rgb

    rgba = np.random.default_rng(8).integers(0, 256, size=(32, 32, 4), dtype=np.uint8)
    rgba[:, :16, 3] = 0  # transparent left half: white once composited, random colours if alpha is dropped
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    expected = np.asarray(decode_rgb(tmp_path / "alpha.png"), dtype=np.float64) / 255
    assert np.all(expected[:, :16] == 1.0)
    np.testing.assert_array_equal(load_image_array(tmp_path / "alpha.png"), expected)
    np.testing.assert_array_equal(load_image_array(Image.fromarray(rgba, mode="RGBA")), expected)


def test_hf_ratio_definition_names_the_crop_rule_and_scores_non_square_outputs(tmp_path):
    from eval.spectral import HighFrequencyRatio, HighFrequencyRatioGap

    assert HighFrequencyRatio().definition() == "rapsd-pysteps-luma601-meanremoved-centre-square-256-bicubic/hf>=0.25cpp"
    assert HighFrequencyRatio(size=None).definition() == "rapsd-pysteps-luma601-meanremoved-centre-square-native/hf>=0.25cpp"
    assert HighFrequencyRatioGap(cutoff=0.3).definition() == (
        "rapsd-pysteps-luma601-meanremoved-centre-square-256-bicubic/hf>=0.3cpp/abs-gap-to-style-set-mean")
    for name, shape in [("wide", (300, 600)), ("tall", (600, 300)), ("square", (300, 300))]:
        Image.fromarray((centred_wave(shape, "ring") * 255).round().astype(np.uint8)).save(tmp_path / f"{name}.png")
    metric = HighFrequencyRatio()
    square = metric.ratio(tmp_path / "square.png")
    assert square < 0.01
    assert metric.ratio(tmp_path / "wide.png") == pytest.approx(square, abs=1e-9)
    assert metric.ratio(tmp_path / "tall.png") == pytest.approx(square, abs=1e-9)
