import numpy as np
import pytest
from PIL import Image

from eval.rapsd import DomainSpectrum, domain_spectrum, high_frequency_ratio, image_spectrum, rapsd


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
