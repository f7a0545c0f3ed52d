"""Run configuration: the loop's dataclass, and resolution of a method's named profile plus overrides.

Precedence, lowest first: dataclass defaults (SMS's settings) < the method's profile < user overrides.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from sms.method import Prompts, ScoreDistillation, methods
from sms.models.stack import ModelSpec
from sms.registry import UnknownName, closest
from sms.stylizer import Stylizer, model_settings, needs_exemplar, stylizers


class ConfigError(ValueError):
    """A run configuration names a profile or setting that does not exist; the message lists what does."""


@dataclass
class LoopConfig:
    """The per-image optimisation of z shared by every method (spec §1, §7)."""

    iters: int = 500
    optimizer: str = "adamw"               # adamw | sgd
    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01             # PyTorch's AdamW default, kept by the release
    schedule: str = "warmup_cosine"        # warmup_cosine | constant
    warmup: int = 100
    cosine_horizon: float = 1.5            # cosine period spans 1.5·iters ⇒ lr ends ≈ 0.0325, never 0
    grad_numerator: float | None = None    # None: ½·mean reduction (∂/∂z = g/numel); DDS: 2000 ⇒ g·2000/(h·w)
    identity: str = "psr"
    identity_options: dict = field(default_factory=dict)
    lambda_identity: float = 5e-4          # λ; 0 disables the identity loss
    init: str = "sample"                   # sample | mean of the VAE posterior
    resolution: int = 512                  # short side in pixels, aspect kept
    # "release" reproduces stylize.py (sms.deviations): int(side·scale) without antialias; the last 50-step
    # preview, 8-bit by truncation, via 256 px on the short side
    input_resize: str = "suite"            # suite | release
    output_image: str = "suite"            # suite | release
    seed: int = 0
    preview_every: int = 0                 # 0: no preview strip


@dataclass
class RunConfig:
    method: str = "sms"
    profile: str | None = None             # None: the method's default profile
    prompts: Prompts = field(default_factory=lambda: Prompts(style="watercolor style"))
    model: ModelSpec = field(default_factory=ModelSpec)
    loop_overrides: dict[str, Any] = field(default_factory=dict)
    method_overrides: dict[str, Any] = field(default_factory=dict)
    # an exemplar method's style image: a file, or a folder from which each content image gets one
    # (sms.exemplars; the runner resolves a folder to that image's file before the run is resolved)
    exemplar: str | None = None


#: the loop settings a sampling or classic method reads (the rest belong to the score-distillation loop)
STYLIZER_LOOP_FIELDS = ("seed", "resolution", "input_resize")


@dataclass
class ResolvedRun:
    method_cls: type[ScoreDistillation] | type[Stylizer]
    profile: str
    method_config: Any
    loop: LoopConfig
    run: RunConfig

    @property
    def is_distillation(self) -> bool:
        return issubclass(self.method_cls, ScoreDistillation)

    def as_dict(self) -> dict[str, Any]:
        loop = dataclasses.asdict(self.loop)
        if not self.is_distillation:
            loop = {name: loop[name] for name in STYLIZER_LOOP_FIELDS}
        return {"method": self.run.method, "family": self.method_cls.family, "profile": self.profile,
                "method_config": dataclasses.asdict(self.method_config),
                "loop": loop, "model": model_settings(self.method_cls, dataclasses.asdict(self.run.model)),
                "prompts": {"style": self.run.prompts.style, "caption": self.run.prompts.caption,
                            "target": self.run.prompts.target},
                "exemplar": self.run.exemplar}


def method_class(name: str) -> type[ScoreDistillation] | type[Stylizer]:
    """A registered method of any family by name (score distillation, sampling, classic)."""
    if name in stylizers:
        return stylizers.get(name)
    if name in methods:
        return methods.get(name)
    known = sorted({*methods.names(), *stylizers.names()})
    raise UnknownName(f"unknown method {name!r}; registered: {', '.join(known) or 'none'}.{closest(name, known)}")


def resolve(run: RunConfig) -> ResolvedRun:
    method_cls = method_class(run.method)
    profile = run.profile or method_cls.default_profile
    if profile not in method_cls.profiles:
        raise ConfigError(f"method {run.method!r} has no profile {profile!r}; its profiles: "
                          f"{', '.join(sorted(method_cls.profiles))}.{closest(profile, method_cls.profiles)}")
    settings = method_cls.profiles[profile]
    method_config = from_dict(method_cls.Config, deep_merge(settings.get("method", {}), run.method_overrides))
    loop = from_dict(LoopConfig, deep_merge(settings.get("loop", {}), run.loop_overrides))
    if run.exemplar and not needs_exemplar(method_cls):   # a style's exemplar is only its exemplar methods' input
        run = dataclasses.replace(run, exemplar=None)
    return ResolvedRun(method_cls, profile, method_config, loop, run)


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def from_dict(cls, data: dict[str, Any]):
    """Build dataclass ``cls`` from a (possibly nested) dict, rejecting unknown keys by name."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        hints = "".join(closest(name, known) for name in sorted(unknown))
        raise ConfigError(f"{cls.__name__} has no setting(s) {', '.join(sorted(unknown))}; its settings: "
                          f"{', '.join(sorted(known))}.{hints}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)
