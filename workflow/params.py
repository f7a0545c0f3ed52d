"""``params.yaml`` read, validated and resolved: the active profile, and each (run, style) as a RunConfig.

This is the one place that turns the declarations into library objects; stages, ``sms check`` and the
tests all go through :func:`load_params` and :meth:`Params.run_config`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workflow.errors import UserError
from workflow.schema import validate

DEFAULT_PARAMS = Path("params.yaml")
STAGED_STYLES = Path("data/staged/styles")   # the stage stage's style reference sets (``exemplar: style_set``)
STYLE_SET = "style_set"
# optional ModelSpec keys of `stylize`
MODEL_OPTIONS = ("tf32", "channels_last", "compile", "compile_mode", "release_lora_merge")


@dataclass
class Params:
    raw: dict[str, Any]
    path: Path

    @property
    def profile_name(self) -> str:
        return self.raw["profile"]

    @property
    def profile(self) -> dict[str, Any]:
        return self.raw["profiles"][self.profile_name]

    @property
    def seed(self) -> int:
        return self.raw["seed"]

    @property
    def runs(self) -> dict[str, dict]:
        return self.raw["runs"]

    @property
    def stylize(self) -> dict[str, Any]:
        return self.profile["stylize"]

    @property
    def styles(self) -> dict[str, dict]:
        return self.profile["styles"]

    @property
    def executor(self) -> dict[str, Any]:
        """Where the stylise stages' images run (workflow/executor.py); never part of a result."""
        return self.profile.get("executor") or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self.profile.get("metrics") or {}

    @property
    def metrics_device(self) -> str:
        return self.metrics.get("device") or self.stylize["device"]

    @property
    def generator(self) -> dict[str, Any]:
        """Training content and settings of the feed-forward generators (runs that declare `generator:`)."""
        return self.profile.get("generator") or {}

    def is_generator_run(self, name: str) -> bool:
        return self.run(name).get("generator") is not None

    def train_config(self, run_name: str):
        """The TrainConfig of a generator run: the profile's generator.train < the run's own `generator`."""
        from sms.config import deep_merge, from_dict
        from sms.generator_train import TrainConfig

        return from_dict(TrainConfig, deep_merge(self.generator.get("train") or {}, self.run(run_name)["generator"]))

    def run(self, name: str) -> dict:
        if name not in self.runs:
            from sms.registry import closest

            raise UserError(f"no run {name!r} in {self.path}: runs are {', '.join(self.runs)}.{closest(name, self.runs)}"
                            " Declare it under `runs:` (method, set, loop, tables) or pick one of those.")
        return self.runs[name]

    def model_spec(self, style_name: str, **overrides: Any):
        from sms.models.stack import ModelSpec

        settings, style = self.stylize, self.styles[style_name]
        return ModelSpec(base=settings["model"], single_file_config=settings.get("model_config"),
                         style_base=style.get("style_base"), style_base_config=style.get("style_base_config"),
                         style_lora=style.get("lora"), lora_scale=style.get("lora_scale", 0.8),
                         apply_text_encoder_lora=style.get("apply_text_encoder_lora", False),
                         dtype=settings.get("dtype", "float32"), device=settings["device"],
                         controlnet=settings.get("controlnet"), vgg19=settings.get("vgg19"),
                         **{key: settings[key] for key in MODEL_OPTIONS if key in settings}, **overrides)

    def run_config(self, run_name: str, style_name: str):
        """The RunConfig of one (run, style) cell: profile < style < the run's own `loop` and `set`."""
        from sms.config import RunConfig, deep_merge
        from sms.method import Prompts

        entry, style = self.run(run_name), self.styles[style_name]
        loop = {"seed": self.seed, "resolution": self.stylize["resolution"], "lambda_identity": style["lambda"]}
        if self.stylize.get("iters"):
            loop["iters"] = self.stylize["iters"]
        return RunConfig(method=entry["method"], profile=entry.get("profile"), prompts=Prompts(style=style["prompt"]),
                         model=self.model_spec(style_name), loop_overrides=deep_merge(loop, entry.get("loop") or {}),
                         method_overrides=deep_merge(self.method_settings(entry["method"]), entry.get("set") or {}),
                         exemplar=self.exemplar(style_name))

    def method_settings(self, method: str) -> dict:
        """This profile's settings of a method for every run of it (e.g. fewer Gatys iterations in the demo)."""
        return dict((self.stylize.get("method_settings") or {}).get(method) or {})

    def exemplar(self, style_name: str) -> str | None:
        """The style's exemplar image or folder for exemplar methods; ``style_set`` = its reference art (the
        user's style_set folder, or the demo set that `stage` materialises)."""
        style = self.styles[style_name]
        value = style.get("exemplar")
        if value != STYLE_SET:
            return value
        return style.get("style_set") or str(STAGED_STYLES / style_name)

    def weight_references(self) -> dict[str, str]:
        """label → model/LoRA reference of every weight the active profile uses (files, folders, hub ids)."""
        found = {"stylize.model": self.stylize["model"]}
        for key in ("controlnet", "vgg19"):
            if self.stylize.get(key):
                found[f"stylize.{key}"] = self.stylize[key]
        for name, style in self.styles.items():
            for key in ("style_base", "lora"):
                if style.get(key):
                    found[f"styles.{name}.{key}"] = style[key]
        return found


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    """Read and validate ``path``; every problem is listed in one UserError (exit 2)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found. Run from the suite's folder (where params.yaml is) or pass --params FILE.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None
    problems = validate(raw, path.resolve().parent)
    if problems:
        listed = "\n  - ".join(problems)
        raise UserError(f"{path} has {len(problems)} problem(s):\n  - {listed}\nFix them and rerun (`sms check` "
                        "lists them without running anything).")
    return Params(raw, path)
