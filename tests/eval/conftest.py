"""Stand-in weights (random, written to files the metrics load by path) and tiny results folders."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from eval_helpers import TINY_CLIP, TINY_CLIP_CONFIG, smooth_image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
_depth = 0


@contextlib.contextmanager
def lean_cpu():
    """One thread (tiny tensors: as fast, and immune to a busy second core) and flushed denormals (random
    backbones produce them, ~3x slower); restored afterwards so other test folders keep torch's defaults."""
    global _depth
    threads = torch.get_num_threads()
    _depth += 1
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            torch.set_num_threads(threads)
            torch.set_flush_denormal(False)


@pytest.fixture(autouse=True, scope="module")
def _lean_cpu():
    with lean_cpu():
        yield


@pytest.fixture(scope="session")
def style_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("style_watercolor")
    rng = np.random.default_rng(123)
    for i in range(5):
        smooth_image(rng).save(folder / f"style_{i}.png")
    return folder


def _calibrated_inception(seed: int) -> dict:
    """Random Inception trunk whose BatchNorm statistics are set from one batch, so features are O(1)."""
    from eval.inception import inception_trunk

    torch.manual_seed(seed)
    model = inception_trunk()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 80, 80))
    return model.state_dict()


def _clip_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(token, token): index for token, index in simple.encoder.items()}
    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _tiny_pickscore(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(2)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=_clip_tokenizer()).save_pretrained(folder)


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """MetricWeights pointing at random stand-ins for every backbone (hash check off: not the real files)."""
    with lean_cpu():
        return _write_weights(tmp_path_factory.mktemp("weights"))


def _write_weights(folder: Path):
    import open_clip
    import torchvision

    from eval.weights import MetricWeights

    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in alexnet.items()}, folder / "alexnet.pth")

    config = folder / f"{TINY_CLIP}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(1)
    torch.save(open_clip.create_model(TINY_CLIP).state_dict(), folder / "clip.pt")

    trunk = _calibrated_inception(3)
    torch.save(trunk, folder / "inception.pth")
    trunk["fc1.weight"] = torch.zeros(1, 2048)  # art-fid's two-head layout
    torch.save(trunk, folder / "art_inception.pth")

    _tiny_pickscore(folder / "pickscore")
    return MetricWeights(
        alexnet=folder / "alexnet.pth",
        clip=folder / "clip.pt",
        clip_arch=TINY_CLIP,
        inception=folder / "inception.pth",
        art_inception=folder / "art_inception.pth",
        pickscore=folder / "pickscore",
        verify_hashes=False,
    )
