"""``sms check`` of what single methods take besides the SD weights: exemplar style images, and their own
weight files (a ControlNet, VGG-19). A run that would fail on its first image is refused here instead."""
from __future__ import annotations

from pathlib import Path

from sms.config import method_class
from sms.exemplars import ExemplarError, exemplar_files
from sms.images import ImageLoadError, load_rgb
from sms.registry import UnknownName
from sms.stylizer import needs_exemplar
from sms.weights import WeightFileError, is_stand_in, safetensors_header
from workflow.params import STAGED_STYLES, STYLE_SET, Params

WHAT = {"controlnet": "an SD-1.5 ControlNet (canny or tile): a diffusers folder or a single .safetensors file, "
                      "e.g. control_v11p_sd15_canny.safetensors",
        "vgg19": "torchvision's VGG-19 weights (vgg19-dcbb9e9d.pth) or the same state dict as .safetensors"}


def check_method_inputs(params: Params, runs: list[str]) -> list[str]:
    problems, where = [], f"profiles.{params.profile_name}"
    for run in runs:
        try:
            cls = method_class(params.run(run)["method"])
        except UnknownName:
            continue   # reported by the run check
        if needs_exemplar(cls):
            for style_name, style in params.styles.items():
                problem = _exemplar_problem(params, style_name, style.get("exemplar"), run, cls.registry_name)
                problems += [f"{where}.styles.{style_name}.exemplar: {problem}"] if problem else []
        for key in getattr(cls, "spec_weights", ()):
            problem = _weight_problem(params.stylize.get(key), key, run)
            problems += [f"{where}.stylize.{key}: {problem}"] if problem else []
    return sorted(set(problems))


def _exemplar_problem(params: Params, style_name: str, value: str | None, run: str, method: str) -> str | None:
    if not value:
        return (f"missing: run {run!r} uses {method!r}, which takes an exemplar style image; give an image, a "
                f"folder of them, or '{STYLE_SET}' (the style's reference art)")
    if value == STYLE_SET:
        return None if params.styles[style_name].get("style_set") or _demo_set(params, style_name) else \
            f"'{STYLE_SET}' needs the style's style_set folder"
    try:
        files = exemplar_files(value)
        if len(files) == 1:
            load_rgb(files[0])
    except (ExemplarError, ImageLoadError) as error:
        return str(error)
    return None


def _demo_set(params: Params, style_name: str) -> bool:
    """The demo style set is materialised by `stage` under data/staged/styles (it exists after staging)."""
    return params.styles[style_name].get("demo_set") is not None or (STAGED_STYLES / style_name).is_dir()


def _weight_problem(value: str | None, key: str, run: str) -> str | None:
    if not value:
        return f"missing: run {run!r} needs {WHAT[key]}; set it here (or remove the run)"
    if is_stand_in(value):
        return None
    path = Path(value)
    if not path.exists():
        return f"{path} does not exist; it should be {WHAT[key]}"
    for file in [path] if path.is_file() else sorted(path.glob("*.safetensors")):
        if file.suffix.lower() == ".safetensors":
            try:
                safetensors_header(file)
            except WeightFileError as error:
                return str(error)
    return None
