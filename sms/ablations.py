"""Named ablation configurations (paper Table "ablation" [notes]; supplement E.1 identity losses, E.2 λ).

Each entry is one line: name → (method, profile, method overrides, loop overrides), applied on top of the
method's profile by :func:`sms.config.resolve`. Rows not stated otherwise are SMS ``official`` (the release:
ANS timesteps, SAGR on, PSR with λ = 5e-4). The identity-loss variants keep λ = 5e-4 (the supplement gives
no per-variant λ: a suite choice, recorded in every sidecar).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from sms.config import RunConfig
from sms.method import Prompts
from sms.models.stack import ModelSpec


class Ablation(NamedTuple):
    method: str
    profile: str | None
    method_overrides: dict[str, Any]
    loop_overrides: dict[str, Any]


LAMBDAS = {"0": 0.0, "1e-4": 1e-4, "2e-4": 2e-4, "5e-4": 5e-4, "1e-3": 1e-3, "2e-3": 2e-3}

ABLATIONS: dict[str, Ablation] = {
    "sm_only": Ablation("sms", "official", {"relevance": False}, {"identity": "none"}),
    "sm+psr": Ablation("sms", "official", {"relevance": False}, {"identity": "psr"}),
    "sm+sagr": Ablation("sms", "official", {"relevance": True}, {"identity": "none"}),
    "full": Ablation("sms", "official", {}, {}),
    "full_uniform_t": Ablation("sms", "official", {"t_sampler": "uniform"}, {}),
    "full_linear_t": Ablation("sms", "official", {"t_sampler": "linear"}, {}),
    "id_none": Ablation("sms", "official", {}, {"identity": "none"}),
    "id_latent_mse": Ablation("sms", "official", {}, {"identity": "latent_mse"}),
    "id_psr_fixed": Ablation("sms", "official", {}, {"identity": "psr_fixed"}),
    "id_fft_lowpass": Ablation("sms", "official", {}, {"identity": "fft_lowpass"}),
    "id_psr": Ablation("sms", "official", {}, {"identity": "psr"}),
    **{f"lambda_{label}": Ablation("sms", "official", {}, {"identity": "psr", "lambda_identity": value})
       for label, value in LAMBDAS.items()},
}


def names() -> list[str]:
    return list(ABLATIONS)


def ablation_run(name: str, prompts: Prompts, model: ModelSpec | None = None, *,
                 loop_overrides: dict[str, Any] | None = None,
                 method_overrides: dict[str, Any] | None = None) -> RunConfig:
    """The :class:`RunConfig` of ablation ``name``; extra overrides (iters, seed, …) win over the entry's."""
    try:
        entry = ABLATIONS[name]
    except KeyError:
        raise KeyError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}") from None
    return RunConfig(method=entry.method, profile=entry.profile, prompts=prompts, model=model or ModelSpec(),
                     loop_overrides={**entry.loop_overrides, **(loop_overrides or {})},
                     method_overrides={**entry.method_overrides, **(method_overrides or {})})
