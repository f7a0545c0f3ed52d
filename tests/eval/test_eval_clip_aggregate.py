"""clip_score aggregates like torchmetrics' CLIPScore (clip the mean at 0), not Hessel et al. (clip each image)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchmetrics.multimodal import CLIPScore as TorchmetricsCLIPScore

from eval import clip_metrics
from sms.results import Sample

TEXT = torch.tensor([1.0, 0.0, 0.0])


def image_embeddings(cosines: list[float]) -> torch.Tensor:
    """Unit vectors whose cosine with TEXT is each of ``cosines``."""
    cos = torch.tensor(cosines)
    return torch.stack([cos, (1 - cos**2).sqrt(), torch.zeros_like(cos)], dim=-1)


class FixedEmbeddings(torch.nn.Module):
    """One model behind both APIs: open_clip-like (ours) and transformers-CLIP-like (torchmetrics')."""

    config = SimpleNamespace()
    definition = "fixed-embeddings"

    def __init__(self, cosines: list[float]):
        super().__init__()
        self.images = image_embeddings(cosines)

    def encode_images(self, paths) -> torch.Tensor:
        return self.images[[int(p) for p in paths]]

    def encode_texts(self, texts) -> torch.Tensor:
        return TEXT.expand(len(texts), -1)

    def __call__(self, images=None, text=None, **_):  # the processor
        if images is not None:
            return {"pixel_values": torch.stack([image.flatten()[:1] for image in images])}
        return {"input_ids": torch.zeros(len(text), 1, dtype=torch.long), "attention_mask": torch.ones(len(text), 1)}

    def get_image_features(self, pixel_values):
        return self.images[pixel_values[:, 0].long()]

    def get_text_features(self, input_ids, attention_mask):
        return TEXT.expand(len(input_ids), -1)


def ours(model: FixedEmbeddings, n: int, monkeypatch) -> torch.Tensor:
    monkeypatch.setattr(clip_metrics, "load_open_clip", lambda weights, device: model)
    metric = clip_metrics.CLIPScore()
    metric.update([Sample(id=str(i), output=str(i), prompt="a prompt") for i in range(n)])
    return metric.compute()


def torchmetrics_score(model: FixedEmbeddings, n: int) -> float:
    reference = TorchmetricsCLIPScore(model_name_or_path=lambda: (model, model))
    reference.update([torch.full((3, 2, 2), float(i)) for i in range(n)], ["a prompt"] * n)
    return float(reference.compute())


@pytest.mark.parametrize("cosines, torchmetrics, hessel", [
    ([-0.10, 0.30], 10.0, 15.0),
    ([-0.20, 0.05, 0.33], 6.0, 38 / 3),
    ([0.25, 0.31], 28.0, 28.0),
])
def test_clip_score_mean_is_torchmetrics_clipscore(cosines, torchmetrics, hessel, monkeypatch):
    model = FixedEmbeddings(cosines)
    per_image = ours(model, len(cosines), monkeypatch)
    np.testing.assert_allclose(per_image.numpy(), 100 * np.array(cosines), rtol=1e-6)  # no per-image clip
    assert float(per_image.mean()) == pytest.approx(torchmetrics, rel=1e-6)
    assert torchmetrics_score(model, len(cosines)) == pytest.approx(torchmetrics, rel=1e-6)
    assert float(per_image.clamp(min=0).mean()) == pytest.approx(hessel, rel=1e-6)  # what we do not compute


def test_a_negative_mean_is_reported_where_torchmetrics_says_zero(monkeypatch):
    model = FixedEmbeddings([-0.30, 0.10])
    assert float(ours(model, 2, monkeypatch).mean()) == pytest.approx(-10.0, rel=1e-6)
    assert torchmetrics_score(model, 2) == 0.0
