"""User-shaped files for the paper profile, fabricated from the tiny models: what a researcher brings.

- a single-file LDM-layout ``.safetensors`` checkpoint (the base) with its config folder (the tiny models are
  not SD-1.5-sized, exactly the case of `model_config`), and a diffusers folder (a style base);
- kohya-format style LoRAs, referred to by ``~/…`` paths;
- a DIV2K zip in the official layout (``DIV2K_valid_HR/0801.png`` … ``0900.png``), accepted by its own checksum;
- style reference folders with nested folders, an unreadable file and a ``.gif``;
- metric weights in the file formats eval/README.md documents (random stand-ins written by eval.standin);
- the single baselines' own weights: a ControlNet as one ``.safetensors`` file and VGG-19 as torchvision's
  ``vgg19-dcbb9e9d.pth`` (features' state dict, ``features.*`` keys), and an exemplar image beside a style set.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from sms.hashing import sha256_file

DIV2K_NAMES = [f"{index:04d}.png" for index in range(801, 901)]


def _pipeline(variant: int):
    from diffusers import StableDiffusionPipeline

    from sms.models.loading import load_base

    base = load_base(f"tiny:{variant}")
    return StableDiffusionPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                                   unet=base.unet, scheduler=base.scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def write_checkpoints(weights: Path) -> dict[str, Path]:
    from safetensors.torch import save_file

    from sms.models.ldm_export import save_ldm_single_file
    from sms.models.tiny import build_tiny_unet, tiny_style_lora_state_dict

    base, style = _pipeline(0), _pipeline(1)
    single = save_ldm_single_file(base.unet, base.vae, base.text_encoder, weights / "tiny-base.safetensors")
    config = weights / "tiny-base-config"
    base.save_pretrained(config)
    for file in [*config.rglob("*.safetensors"), *config.rglob("*.bin")]:
        file.unlink()
    folder = weights / "tiny-style-base"
    style.save_pretrained(folder)
    loras = {}
    for name, seed in (("watercolor", 11), ("pixel", 12)):
        loras[name] = weights / "lora" / f"{name}_kohya.safetensors"
        loras[name].parent.mkdir(parents=True, exist_ok=True)
        save_file(tiny_style_lora_state_dict(build_tiny_unet(), seed=seed), str(loras[name]),
                  metadata={"ss_network_module": "networks.lora"})
    return {"single": single, "config": config, "folder": folder, **{f"lora_{k}": v for k, v in loras.items()}}


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([x / size[0], y / size[1], 0.5 + 0.5 * np.sin((x + y) / 7.0 + seed)], axis=-1)
    noisy = base + 0.15 * rng.standard_normal(base.shape)
    return Image.fromarray((np.clip(noisy, 0, 1) * 255).astype(np.uint8), "RGB")


def write_div2k_zip(path: Path) -> tuple[Path, str]:
    """The official layout, 100 small landscape PNGs; returns the zip and its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for index, name in enumerate(DIV2K_NAMES):
            buffer = io.BytesIO()
            _photo(index, (96, 72)).save(buffer, format="PNG")
            archive.writestr(f"DIV2K_valid_HR/{name}", buffer.getvalue())
    return path, sha256_file(path)


def write_style_set(folder: Path, seed: int) -> Path:
    """Reference art as users keep it: nested folders, a .gif, one unreadable file."""
    (folder / "series_a").mkdir(parents=True, exist_ok=True)
    (folder / "series_b" / "more").mkdir(parents=True, exist_ok=True)
    for index in range(3):
        _photo(seed * 10 + index, (80, 80)).save(folder / "series_a" / f"art_{index}.jpg", quality=90)
    _photo(seed * 10 + 5, (64, 96)).save(folder / "series_b" / "more" / "deep.png")
    _photo(seed * 10 + 6, (72, 72)).convert("P").save(folder / "series_b" / "loop.gif")
    (folder / "series_b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    return folder


def write_method_weights(weights: Path) -> dict[str, Path]:
    """A ControlNet single file (a differently seeded copy of the stand-in's shape) and a VGG-19 .pth."""
    import torch
    from safetensors.torch import save_file

    from sms.models.controlnet import build_tiny_controlnet
    from sms.models.vgg import TORCHVISION_FILE, standin_state

    controlnet = weights / "control_v11p_sd15_canny.safetensors"
    save_file({k: v.contiguous() for k, v in build_tiny_controlnet(seed=7).state_dict().items()}, str(controlnet))
    vgg19 = weights / TORCHVISION_FILE
    torch.save({f"features.{key}": value for key, value in standin_state(seed=3).items()}, vgg19)
    return {"controlnet": controlnet, "vgg19": vgg19}


def write_metric_weights(folder: Path) -> Path:
    from eval.standin import write_standin_weights

    return write_standin_weights(folder, seed=0)


def fabricate(home: Path) -> dict:
    """Every file of the rehearsal under ``home`` (the user's ~) and the paper profile that points at them."""
    weights = home / "weights"
    files = write_checkpoints(weights)
    zip_path, zip_sha = write_div2k_zip(home / "data" / "DIV2K_valid_HR.zip")
    for name, seed in (("watercolor", 1), ("pixel", 2)):
        write_style_set(home / "data" / "styles" / name, seed)
    write_style_set(home / "data" / "train_photos", 3)     # the generators' training images: a user's folder
    method_files = write_method_weights(weights)
    exemplar = home / "data" / "exemplars" / "pixel_exemplar.png"
    exemplar.parent.mkdir(parents=True)
    _photo(77, (90, 60)).save(exemplar)
    metric_json = write_metric_weights(weights / "metrics")
    import json

    metric_files = json.loads(metric_json.read_text())
    tilde = lambda path: "~/" + Path(path).relative_to(home).as_posix()  # noqa: E731
    from eval.weights import PACKAGED_FILES

    metric_weights = {key: value if value in PACKAGED_FILES else tilde(weights / "metrics" / value)
                      for key, value in metric_files.items()
                      if key in ("alexnet", "clip", "clip_config", "inception", "art_inception", "pickscore")}
    return {
        "label": "rehearsal: the paper profile's code path with fabricated user files (tiny models)",
        "stylize": {"model": tilde(files["single"]), "model_config": tilde(files["config"]), "device": "cpu",
                    "dtype": "float32", "tf32": False, "resolution": 64, "iters": 2,
                    "controlnet": tilde(method_files["controlnet"]), "vgg19": tilde(method_files["vgg19"]),
                    "method_settings": {"gatys": {"iterations": 3}, "styleid": {"steps": 4},
                                        "style_lora_controlnet": {"steps": 4}}},
        "content": {"kind": "div2k", "split": "valid", "size": 64, "zip": tilde(zip_path), "folder": None,
                    "sha256": zip_sha, "limit": 2},
        "styles": {
            "watercolor": {"prompt": "watercolor style", "lora": tilde(files["lora_watercolor"]), "style_base": None,
                           "lambda": 5.0e-4, "style_set": "~/data/styles/watercolor", "exemplar": "style_set"},
            "pixel": {"prompt": "3232pixel, pixel art", "lora": tilde(files["lora_pixel"]),
                      "style_base": tilde(files["folder"]), "lambda": 2.0e-4, "style_set": "~/data/styles/pixel",
                      "exemplar": tilde(exemplar)},
        },
        "generator": {"train_content": {"kind": "folder", "path": "~/data/train_photos", "size": 64, "limit": None},
                      "train": {"steps": 3, "batch_size": 2, "crop": 64, "lr": 1.0e-4, "architecture": "default",
                                "checkpoint_every": 2}},
        "metrics": {"standin_weights": False, "bootstrap": 50, "device": None, "options": {"fid_art": {"resize": 299}, "artfid": {"resize": 299}},
                    "weights": {**metric_weights, "clip_arch": metric_files["clip_arch"], "verify_hashes": False}},
    }
