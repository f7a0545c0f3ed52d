"""The shape of ``params.yaml``: every key the suite reads, its type, and whether it names a file.

Validation lists every problem at once, each with its key path (``profiles.paper.styles.oil.lora``) and,
for a misspelt key, the closest known one. Paths are expanded (``~``, ``$VAR``, relative to params.yaml)
so that the library only ever sees absolute paths.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sms.registry import closest

NUMBER = (int, float)
TABLES = ("main", "runtime", "rapsd", "ablation", "identity", "lambda", "feedforward")


@dataclass(frozen=True)
class Key:
    types: tuple[type, ...]
    required: bool = False
    path: bool = False           # a file or folder: expanded, and checked by `sms check`
    choices: tuple[str, ...] = ()
    help: str = ""


def _key(*types: type, **options: Any) -> Key:
    return Key(types, **options)


STR, OPT_STR = _key(str), _key(str, type(None))
PATH = _key(str, type(None), path=True)

TOP = {"profile": _key(str, required=True), "seed": _key(int, required=True),
       "profiles": _key(dict, required=True), "runs": _key(dict, required=True)}
PROFILE = {
    "label": _key(str, required=True, help="printed on every table: what the numbers are"),
    "stylize": _key(dict, required=True, help="what the stylise stages read: model, device, precision, size"),
    "content": _key(dict, required=True),
    "styles": _key(dict, required=True),
    "metrics": _key(dict, required=True),
    "executor": _key(dict, help="where the stylise stages' images run (local or ray); not tracked by DVC"),
    "generator": _key(dict, help="feed-forward generators of runs that declare `generator:`: their training "
                                 "content and settings"),
}
GENERATOR = {"train_content": _key(dict, required=True, help="the training images, declared as `content` is"),
             "train": _key(dict, help="sms.generator_train.TrainConfig settings (steps, batch_size, crop, lr, …)")}
STYLIZE = {
    "model": _key(str, required=True, help="'tiny', hub id, diffusers folder or single .safetensors file"),
    "model_config": _key(str, type(None), path=True, help="diffusers config folder for a non-SD-1.5 single file"),
    "device": _key(str, required=True),
    "dtype": _key(str, choices=("float32", "bfloat16", "float16")),
    "tf32": _key(bool), "channels_last": _key(bool), "compile": _key(bool), "compile_mode": OPT_STR,
    "release_lora_merge": _key(bool, help="merge the style LoRA in fp16 as the release does (sms.deviations)"),
    "resolution": _key(int, required=True),
    "iters": _key(int, type(None)),
    "method_settings": _key(dict, help="method name → settings over its profile for every run of it in this profile"),
    "controlnet": _key(str, type(None), path=True, help="SD-1.5 ControlNet of style_lora_controlnet ('tiny': stand-in)"),
    "vgg19": _key(str, type(None), path=True, help="VGG-19 weights of gatys (torchvision's file; 'tiny': stand-in)"),
}
CONTENT = {
    "demo": {"kind": STR, "size": _key(int, required=True), "limit": _key(int, type(None))},
    "div2k": {"kind": STR, "size": _key(int, required=True), "limit": _key(int, type(None)),
              "split": _key(str, choices=("valid", "train")), "zip": PATH, "folder": PATH,
              "sha256": _key(str, type(None), help="accept an archive with this checksum instead of the official")},
    "folder": {"kind": STR, "size": _key(int, required=True), "limit": _key(int, type(None)),
               "path": _key(str, required=True, path=True)},
}
STYLE = {
    "prompt": _key(str, required=True), "lambda": _key(*NUMBER, required=True),
    "lora": PATH, "lora_scale": _key(*NUMBER), "style_base": _key(str, type(None), path=True),
    "style_base_config": PATH, "apply_text_encoder_lora": _key(bool),
    "style_set": PATH, "demo_set": _key(str, choices=("painted",)),
    "exemplar": _key(str, type(None), path=True, help="style image or folder of exemplar methods (StyleID, Magenta, "
                                                         "Gatys); 'style_set': the style's reference art"),
}
METRICS = {"device": OPT_STR, "bootstrap": _key(int), "set_bootstrap": _key(int), "batch_size": _key(int),
           "standin_weights": _key(bool, required=True, help="random stand-in backbones (demo) or real weights"),
           "names": _key(list, type(None)), "options": _key(dict),
           "weights": _key(dict)}
WEIGHTS = {name: PATH for name in ("alexnet", "clip", "clip_config", "inception", "art_inception", "pickscore",
                                   "pickscore_processor")} | {"clip_arch": STR, "allow_download": _key(bool),
                                                              "verify_hashes": _key(bool)}
EXECUTOR = {"kind": _key(str, choices=("local", "ray")), "address": OPT_STR, "gpus_per_worker": _key(*NUMBER),
            "max_retries": _key(int), "workers": _key(int, type(None))}
RUN = {"method": _key(str, required=True), "profile": OPT_STR, "set": _key(dict), "loop": _key(dict),
       "tables": _key(dict),
       "generator": _key(dict, help="train a feed-forward generator per style with this run's method and stylise "
                                    "with it (settings over the profile's generator.train)")}


class Validator:
    """Walks params.yaml against the declarations above, collecting problems and expanding paths."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []

    def section(self, data: Any, keys: dict[str, Key], where: str) -> dict:
        if not isinstance(data, dict):
            self.problems.append(f"{where}: expected a mapping, got {type(data).__name__}")
            return {}
        for name in data:
            if name not in keys:
                self.problems.append(f"{where}.{name}: unknown key.{closest(str(name), keys)} "
                                     f"Known here: {', '.join(keys)}")
        for name, key in keys.items():
            if name not in data:
                if key.required:
                    self.problems.append(f"{where}.{name}: missing (required)")
                continue
            value = data[name]
            if key.types and not isinstance(value, key.types) or isinstance(value, bool) and bool not in key.types:
                wanted = " or ".join("null" if t is type(None) else t.__name__ for t in key.types)
                self.problems.append(f"{where}.{name}: expected {wanted}, got {value!r}")
            elif key.choices and value not in key.choices:
                self.problems.append(f"{where}.{name}: {value!r} is not one of {', '.join(key.choices)}."
                                     f"{closest(str(value), key.choices)}")
            elif key.path and isinstance(value, str):
                data[name] = self.expand(value)
        return data

    def expand(self, value: str) -> str:
        """``~`` and ``$VAR`` expanded; a relative path that exists relative to params.yaml made absolute.
        Anything else (a hub id such as ``org/model``) is left as written."""
        expanded = os.path.expanduser(os.path.expandvars(value))
        path = Path(expanded)
        if path.is_absolute():
            return str(path)
        local = self.root / path
        return str(local.resolve()) if local.exists() or expanded != value or value.startswith(".") else value


def validate(params: Any, root: Path) -> list[str]:
    """Every problem of ``params`` (a parsed params.yaml); expands its paths in place."""
    check = Validator(root)
    top = check.section(params, TOP, "params.yaml")
    for name, profile in (top.get("profiles") or {}).items():
        where = f"profiles.{name}"
        profile = check.section(profile, PROFILE, where)
        stylize = check.section(profile.get("stylize") or {}, STYLIZE, f"{where}.stylize")
        if isinstance(stylize.get("model"), str):
            stylize["model"] = check.expand(stylize["model"])
        kind = _content(check, profile.get("content") or {}, f"{where}.content")
        if profile.get("generator") is not None:
            generator = check.section(profile["generator"], GENERATOR, f"{where}.generator")
            if "train_content" in generator:
                _content(check, generator["train_content"] or {}, f"{where}.generator.train_content")
        for style_name, style in (profile.get("styles") or {}).items():
            style = check.section(style, STYLE, f"{where}.styles.{style_name}")
            if isinstance(style.get("style_base"), str):
                style["style_base"] = check.expand(style["style_base"])
            if kind in ("div2k", "folder") and not style.get("style_set"):
                check.problems.append(f"{where}.styles.{style_name}.style_set: missing (the folder of reference "
                                      "art that FID/ArtFID compare against)")
        check.section(profile.get("executor") or {}, EXECUTOR, f"{where}.executor")
        metrics = check.section(profile.get("metrics") or {}, METRICS, f"{where}.metrics")
        check.section(metrics.get("weights") or {}, WEIGHTS, f"{where}.metrics.weights")
    if top.get("profile") not in (top.get("profiles") or {}):
        check.problems.append(f"params.yaml.profile: {top.get('profile')!r} is not one of the profiles "
                              f"({', '.join(top.get('profiles') or {})}).{closest(str(top.get('profile')), top.get('profiles') or {})}")
    for run_name, run in (top.get("runs") or {}).items():
        run = check.section(run, RUN, f"runs.{run_name}")
        for table in run.get("tables") or {}:
            if table not in TABLES:
                check.problems.append(f"runs.{run_name}.tables.{table}: unknown table.{closest(table, TABLES)} "
                                      f"Known: {', '.join(TABLES)}")
    return check.problems


def _content(check: Validator, content: dict, where: str) -> str | None:
    """Validate a content declaration (its keys depend on its kind); returns the kind if known."""
    kind = content.get("kind") if isinstance(content, dict) else None
    if kind not in CONTENT:
        check.problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(CONTENT)}")
        return None
    check.section(content, CONTENT[kind], where)
    return kind
