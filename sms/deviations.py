"""Every way the suite departs from the authors' release (showlab/SMS @ 451f5b9), in one place, with why.

``RELEASE_QUIRKS`` are kept by the ``official`` profile (it reproduces the release); the ``corrected``
profile changes the ones marked with a corrected value. ``SUITE_CHANGES`` apply to both profiles: they
change nothing the method computes (or fix what the release gets wrong for non-square inputs).
"""
from __future__ import annotations

from typing import NamedTuple


class Quirk(NamedTuple):
    setting: str            # dotted SMSConfig / LoopConfig field ("loop." prefix for the loop's)
    official: object        # the release's value
    corrected: object       # the corrected profile's value, or None = kept as in the release
    reason: str


RELEASE_QUIRKS: tuple[Quirk, ...] = (
    Quirk("exact_posterior", False, True,
          "w_t = (1−ᾱ_{t−2})/(1−ᾱ_t)·β_t uses the single-step β_t although t_prev = t−2; the exact two-step "
          "variance, with 1 − ᾱ_t/ᾱ_{t−2}, is ≈2× larger (spec §4)"),
    Quirk("fake_guidance_scale", 4.5, 1.0,
          "the fake score estimates the current distribution's score; VSD and DMD2 apply no CFG to it (spec §4)"),
    Quirk("loop.weight_decay", 0.01, None,
          "PyTorch's AdamW default, kept by the release; it pulls z toward 0. Kept in corrected: the paper's "
          "numbers were made with it"),
    Quirk("fake.t_sampler_options", {"min_ratio": 0.02, "max_ratio": 0.5}, None,
          "the release narrows the fake update's t to [21, 499] by mutating its config; kept in corrected: "
          "the fake score is only queried on that range"),
)

SUITE_CHANGES: tuple[tuple[str, str], ...] = (
    ("PSR mask uses the true latent h and w",
     "the release uses the width for both and asserts on landscape inputs (spec §6)"),
    ("no unconditional pass in the fake update", "the release computes it and discards it: one wasted UNet pass"),
    ("no autograd graph in the relevance pass", "nothing is differentiated through it"),
    ("non-finite gradient entries are zeroed and counted per step",
     "the release's nan_to_num maps ±inf to ±max-float silently"),
    ("one UNet with adapters when the style base is the real base",
     "the release deep-copies the pipeline; adapter outputs equal merged weights to float rounding"),
    ("the fake LoRA is re-initialised, seeded, for every image",
     "otherwise a result depends on which images ran before it on the same process"),
    ("every random draw comes from generators seeded by (seed, image id, step, stream)",
     "two methods with one seed see the same t and ε; reruns are bit-identical"),
)


def corrected_overrides() -> dict:
    """The corrected profile's method settings, derived from the table above."""
    return {quirk.setting: quirk.corrected for quirk in RELEASE_QUIRKS
            if quirk.corrected is not None and not quirk.setting.startswith("loop.")}
