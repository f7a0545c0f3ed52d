"""PickScore (yuvalkirstain/PickScore_v1, a CLIP-H preference model) from a local folder.

Raw score = logit_scale.exp() · cos(E_image, E_text), ≈ 20 for typical images. The paper's values
(0.4–2.1) use an unpublished normalisation, so they are not comparable with these.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from eval.images import load_rgb
from eval.registry import METRICS, Direction, Pairing, PerImageMetric
from eval.weights import MetricUnavailable, MetricWeights, require_dir
from sms.models.quiet import quiet_loading
from sms.results import Sample


def _embedding(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output is the projected embedding; 4.x a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@METRICS.register("pickscore")
class PickScore(PerImageMetric):
    direction = Direction.HIGHER
    pairing = Pairing.PROMPT
    needs = ("prompt",)

    def __init__(self, weights: MetricWeights | None = None, *, device: str = "cpu"):
        super().__init__(weights, device=device)
        from transformers import AutoModel, AutoProcessor

        folder = require_dir(self.weights.pickscore, "PickScore model folder (PickScore_v1)", "pickscore")
        processor_folder = self.weights.pickscore_processor or folder
        try:
            with quiet_loading():
                self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval().to(self.target_device)
                self.processor = AutoProcessor.from_pretrained(processor_folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MetricUnavailable(
                f"PickScore: cannot load model from {folder} / processor from {processor_folder}: {exc}"
            ) from exc
        self.weights_hash = self.weights.weights_id(folder)

    def score(self, samples: Sequence[Sample]) -> torch.Tensor:
        dev = self.target_device
        images = self.processor(images=[load_rgb(s.output) for s in samples], return_tensors="pt")
        texts = self.processor(
            text=[s.prompt for s in samples], padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        with torch.inference_mode():
            image = F.normalize(_embedding(self.model.get_image_features(pixel_values=images["pixel_values"].to(dev))), dim=-1)
            text = F.normalize(
                _embedding(
                    self.model.get_text_features(
                        input_ids=texts["input_ids"].to(dev), attention_mask=texts["attention_mask"].to(dev)
                    )
                ),
                dim=-1,
            )
            return (self.model.logit_scale.exp() * (image * text).sum(-1)).float().cpu()

    def definition(self) -> str:
        return f"pickscore-clip@{self.weights_hash}/processor-resize-centercrop/raw-logit"
