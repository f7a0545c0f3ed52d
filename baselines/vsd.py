"""Variational Score Distillation as "style matching only": SMS without SAGR's R and without PSR.

g = w_t (CFG_4.5(ε_style) − CFG_4.5(ε_fake)) with the fake LoRA trained as in SMS (spec §4, §8); the
VSD idea is ProlificDreamer's (Wang et al., NeurIPS 2023). Reference for the ``official`` profile: the
showlab/SMS release's ``method="vsd"`` (references.md): t uniform over [0.02, 0.98]·T, w_t the PDS
posterior variance, CFG 4.5 on style and fake, AdamW lr 0.1 + fake LoRA as SMS, 500 steps. The release
narrows the fake update's timesteps to t ∈ [21, 499] only for ``method == "sms"``; for ``vsd`` they stay
at [0.02, 0.98]·T, t ∈ [21, 979], which the ``official`` profile reproduces.
"""
from __future__ import annotations

from dataclasses import dataclass

from sms.method import methods
from sms.style_matching import SMSConfig, StyleMatchingScore


@dataclass
class VSDConfig(SMSConfig):
    t_sampler: str = "uniform"   # [0.02, 0.98]·T on the 500-step grid ⇒ t ∈ [21, 979]
    relevance: bool = False      # R ≡ 1: no SAGR


_NO_IDENTITY = {"identity": "none", "lambda_identity": 0.0}
# The release's fake-update range for method="vsd" (not SMS's narrowed [0.02, 0.5]).
RELEASE_FAKE_RANGE = {"t_sampler": "uniform", "t_sampler_options": {"min_ratio": 0.02, "max_ratio": 0.98}}


@methods.register("vsd")
class VariationalScoreDistillation(StyleMatchingScore):
    """SMS's gradient and fake-score update with R ≡ 1, λ = 0 (identity "none").

    Profiles: ``official`` — uniform t (the release's ``method="vsd"``); ``harmonised`` (default) — SMS's
    ANS timesteps, i.e. the "style matching only" ablation. Everything else is SMS's (LoopConfig defaults).
    """

    Config = VSDConfig
    default_profile = "harmonised"
    profiles = {
        "official": {"method": {"fake": dict(RELEASE_FAKE_RANGE)}, "loop": dict(_NO_IDENTITY)},
        "harmonised": {"method": {"t_sampler": "ans"}, "loop": dict(_NO_IDENTITY)},
    }
