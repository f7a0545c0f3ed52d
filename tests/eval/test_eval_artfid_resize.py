"""``resize=512`` is StyleID's ArtFID: torchvision ``Resize(512)`` (short side 512, aspect kept, bilinear on the
PIL image) before the Inception of the FID term and before the LPIPS term."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from eval_helpers import smooth_image
from PIL import Image

from eval.fid import ArtFID, ArtInceptionFID, frechet_distance_features
from eval.images import load_rgb, to_tensor
from sms.results import Sample

LANDSCAPE, PORTRAIT = (96, 64), (64, 96)  # PIL (W, H)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    folder = tmp_path_factory.mktemp("artfid_resize")
    rng = np.random.default_rng(0)

    def save(name: str, size: tuple[int, int]):
        smooth_image(rng, 96).resize(size, Image.BICUBIC).save(folder / name)
        return folder / name

    refs = tuple(save(f"style_{i}.png", PORTRAIT) for i in range(3))
    # the content is larger than its output, with the same aspect: each is resized on its own
    return [Sample(id=f"i{i}", output=save(f"out_{i}.png", LANDSCAPE), content=save(f"content_{i}.png", (144, 96)),
                   style="s", method="m", style_refs=refs) for i in range(2)]


def by_hand(path, size: tuple[int, int]) -> torch.Tensor:
    """torchvision's Resize on a PIL image is PIL's bilinear resize to the size it computes."""
    return to_tensor(load_rgb(path).resize(size, Image.BILINEAR))


def pooled(x: torch.Tensor) -> torch.Tensor:
    """Stands in for Inception's forward (seconds per 512² image on a CPU): any-size input → 192-d features."""
    return F.adaptive_avg_pool2d(x, 8).flatten(1)


def test_resize_512_feeds_short_side_512_to_inception_and_lpips(samples, weights, monkeypatch):
    metric = ArtFID(weights, resize=512)
    fed_inception, fed_lpips = [], []
    monkeypatch.setattr(metric.extractor.model, "forward", lambda x: fed_inception.append(x) or pooled(x))
    lpips_forward = metric.content.model.forward
    monkeypatch.setattr(metric.content.model, "forward",
                        lambda a, b, **kw: fed_lpips.append((a, b)) or lpips_forward(a, b, **kw))
    metric.update(samples)
    value = float(metric.compute())

    assert [tuple(x.shape) for x in fed_inception] == [(2, 3, 512, 768), (3, 3, 768, 512)]
    assert [(tuple(a.shape), tuple(b.shape)) for a, b in fed_lpips] == [((1, 3, 512, 768),) * 2] * 2
    outputs = torch.cat([by_hand(s.output, (768, 512)) for s in samples])
    refs = torch.cat([by_hand(p, (512, 768)) for p in samples[0].style_refs])
    torch.testing.assert_close(fed_inception[0], outputs, rtol=0, atol=0)
    torch.testing.assert_close(fed_inception[1], refs, rtol=0, atol=0)

    with torch.inference_mode():
        lpips = [float(lpips_forward(by_hand(s.output, (768, 512)) * 2 - 1, by_hand(s.content, (768, 512)) * 2 - 1))
                 for s in samples]
    fid = frechet_distance_features(pooled(outputs).double().numpy(), pooled(refs).double().numpy())
    assert value == pytest.approx((1 + np.mean(lpips)) * (1 + fid), rel=1e-6)
    assert metric.definition_id().split("/")[2] == "short512-bilinear-01+lpips-0.1.4-alex-v0.1@" + \
        metric.content.trunk_hash
    assert metric.content.definition().endswith("/short512-bilinear+content-to-output-bicubic")


def test_fid_art_names_the_rule_and_native_size_stays_native(samples, weights):
    resized, native = ArtInceptionFID(weights, resize=512), ArtFID(weights)
    assert resized.definition().endswith("/short512-bilinear-01")
    assert native.definition().split("+")[0].endswith("/native-size-01")
    assert native.content.definition().endswith("/content-to-output-bicubic")
    assert native.extractor.prepare(samples[0].content).shape == (1, 3, 96, 144)


def test_demo_resize_299_upsamples_small_square_outputs(tmp_path, weights):
    smooth_image(np.random.default_rng(1), 64).save(tmp_path / "small.png")
    extractor = ArtInceptionFID(weights, resize=299).extractor
    torch.testing.assert_close(extractor.prepare(tmp_path / "small.png"), by_hand(tmp_path / "small.png", (299, 299)),
                               rtol=0, atol=0)
