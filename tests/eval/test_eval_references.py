"""Each metric equals its reference implementation on the same (random) backbone and images."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from eval_helpers import write_results
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from eval.images import load_rgb, to_tensor
from eval.manifest import attach_style_sets
from sms.results import read_results


@pytest.fixture(scope="module")
def samples(tmp_path_factory, style_dir):
    folder = write_results(tmp_path_factory.mktemp("results"), n=3)
    return attach_style_sets(read_results(folder), {"watercolor": style_dir})


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")  # lpips 0.1.4 vs torchvision
def test_lpips_equals_lpips_package_with_same_trunk(weights, samples):
    import lpips

    from eval.perceptual import LPIPSMetric

    metric = LPIPSMetric(weights)
    metric.update(samples)
    got = metric.compute()

    reference = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    trunk = torch.load(weights.alexnet, weights_only=True)
    for block in (reference.net.slice1, reference.net.slice2, reference.net.slice3, reference.net.slice4, reference.net.slice5):
        for index, layer in block.named_children():
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.data.copy_(trunk[f"features.{index}.weight"])
                layer.bias.data.copy_(trunk[f"features.{index}.bias"])
    with torch.no_grad():
        expected = torch.cat([
            reference(to_tensor(load_rgb(s.output)) * 2 - 1, to_tensor(load_rgb(s.content)) * 2 - 1).flatten()
            for s in samples
        ]).double()
    assert torch.all(expected > 0)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert metric.definition_id().startswith("lpips/lpips-0.1.4-alex-v0.1@") and metric.definition_id().endswith("/N=3")


def _open_clip_reference(weights):
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(weights.clip_arch, pretrained=str(weights.clip))
    return model.eval(), preprocess, open_clip.get_tokenizer(weights.clip_arch)


def test_clip_score_is_100_cos_of_open_clip_embeddings(weights, samples):
    from eval.clip_metrics import CLIPScore

    metric = CLIPScore(weights)
    metric.update(samples)
    got = metric.compute()
    model, preprocess, tokenizer = _open_clip_reference(weights)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(load_rgb(s.output)) for s in samples]))
        text = model.encode_text(tokenizer([s.prompt for s in samples]))
    cos = F.cosine_similarity(image, text, dim=-1).double()
    torch.testing.assert_close(got, 100 * cos, rtol=1e-5, atol=1e-4)  # unclipped: the clip is torchmetrics' on the mean
    assert metric.definition_id().endswith("/openclip-preprocess/100cos-unclipped/N=3")


def test_clip_style_is_mean_cos_to_style_set(weights, samples):
    from eval.clip_metrics import CLIPStyleSimilarity

    metric = CLIPStyleSimilarity(weights)
    metric.update(samples)
    got = metric.compute()
    model, preprocess, _ = _open_clip_reference(weights)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(load_rgb(s.output)) for s in samples]))
        refs = model.encode_image(torch.stack([preprocess(load_rgb(p)) for p in samples[0].style_refs]))
    cos = F.cosine_similarity(image[:, None], refs[None], dim=-1)
    torch.testing.assert_close(got, 100 * cos.mean(1).double(), rtol=1e-5, atol=1e-4)
    assert metric.definition_id().endswith("N=3:ref=5")


def test_pickscore_is_logit_scaled_cos_of_the_model(weights, samples):
    from transformers import AutoModel, AutoProcessor

    from eval.pickscore import PickScore

    metric = PickScore(weights)
    metric.update(samples)
    got = metric.compute()
    model = AutoModel.from_pretrained(weights.pickscore).eval()
    processor = AutoProcessor.from_pretrained(weights.pickscore)
    with torch.no_grad():
        pixels = processor(images=[load_rgb(s.output) for s in samples], return_tensors="pt")["pixel_values"]
        image = model.vision_model(pixel_values=pixels).pooler_output @ model.visual_projection.weight.T
        tokens = processor(text=[s.prompt for s in samples], padding=True, return_tensors="pt")
        assert tokens["input_ids"][0, 0].item() == 49406  # SD/CLIP ids: the tokenizer stand-in is faithful
        text = model.text_model(**tokens).pooler_output @ model.text_projection.weight.T
    expected = model.logit_scale.exp() * F.cosine_similarity(image, text, dim=-1)
    torch.testing.assert_close(got, expected.double(), rtol=1e-5, atol=1e-5)


def test_ssim_and_psnr_equal_scikit_image(samples):
    from eval.pixel import PSNR, SSIM

    ssim, psnr = SSIM(), PSNR()
    ssim.update(samples)
    psnr.update(samples)
    for sample, got_ssim, got_psnr in zip(samples, ssim.compute(), psnr.compute()):
        out = np.asarray(load_rgb(sample.output), dtype=np.float64) / 255
        content = np.asarray(load_rgb(sample.content), dtype=np.float64) / 255
        expected_ssim = structural_similarity(
            out, content, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        # same 11x11 σ=1.5 window and valid region; the residual (~5e-9) is torchmetrics' float32 kernel
        assert float(got_ssim) == pytest.approx(expected_ssim, abs=1e-7)
        # torchmetrics scales by 10/log(10) with log(10) in float32: agreement to 1e-6 relative
        assert float(got_psnr) == pytest.approx(peak_signal_noise_ratio(content, out, data_range=1.0), rel=1e-6)


def test_runtime_metrics_read_sidecars(samples):
    from eval.runtime import PeakMemory, SecondsPerImage, SecondsPerIteration, UNetForwards

    expected = {
        SecondsPerImage: [10.0, 11.0, 12.0],
        SecondsPerIteration: [0.02, 0.04, 0.06],
        PeakMemory: [1.0, math.nan, 3.0],
        UNetForwards: [1000, 1001, 1002],
    }
    for cls, values in expected.items():
        metric = cls()
        metric.update(samples)
        np.testing.assert_allclose(metric.compute().numpy(), values, rtol=1e-12)


def test_hf_ratio_metrics_use_eval_rapsd(samples):
    from eval.rapsd import high_frequency_ratio, image_spectrum
    from eval.spectral import HighFrequencyRatio, HighFrequencyRatioGap

    def ratio(path):
        return high_frequency_ratio(*image_spectrum(path, size=256), cutoff=0.25)

    plain, gap = HighFrequencyRatio(), HighFrequencyRatioGap()
    plain.update(samples)
    gap.update(samples)
    outputs = np.array([ratio(s.output) for s in samples])
    style_mean = np.mean([ratio(p) for p in samples[0].style_refs])
    np.testing.assert_allclose(plain.compute().numpy(), outputs, rtol=1e-12)
    np.testing.assert_allclose(gap.compute().numpy(), np.abs(outputs - style_mean), rtol=1e-12)
