"""Every way the suite departs from the authors' release (showlab/SMS @ 451f5b9), in one place, with why.

``RELEASE_QUIRKS`` are kept by the ``official`` profile (it reproduces the release); the ``corrected``
profile changes the ones marked with a corrected value. ``SUITE_CHANGES`` apply to both profiles. Most change
nothing the method computes beyond float rounding; the others (non-square PSR, LoRA merge precision, the
release's image input and output) name the setting that reproduces the release (``option``, off by default,
so the suite's outputs never change unless asked), or say why there is none.

Every row has an ``id`` and a measured ``effect``: on the tiny models, pinned by the test named
``test_row_<id>`` in ``tests/core/test_deviation*.py`` (``tests/core/test_deviations.py`` fails if a row
has no such test). Numbers marked "full size" come from the issue-12 audit on SD-1.5-sized inputs.
"""
from __future__ import annotations

from typing import NamedTuple


class Quirk(NamedTuple):
    id: str
    setting: str            # dotted SMSConfig / LoopConfig field ("loop." prefix for the loop's)
    official: object        # the release's value
    corrected: object       # the corrected profile's value, or None = kept as in the release
    reason: str
    effect: str


class Change(NamedTuple):
    id: str
    change: str             # what the suite does
    reason: str
    effect: str
    option: tuple[str, object] | None = None   # ("loop.X" | "model.X" | "method.X", value) reproducing the release


RELEASE_QUIRKS: tuple[Quirk, ...] = (
    Quirk("exact_posterior", "exact_posterior", False, True,
          "w_t = (1−ᾱ_{t−2})/(1−ᾱ_t)·β_t uses the single-step β_t although t_prev = t−2; the exact two-step "
          "variance, with 1 − ᾱ_t/ᾱ_{t−2}, is ≈2× larger (spec §4)",
          "exact/release w_t = 1.994 (t = 21), 1.994 (201), 1.993 (499); g scales by the same factor"),
    Quirk("fake_guidance_scale", "fake_guidance_scale", 4.5, 1.0,
          "the fake score estimates the current distribution's score; VSD and DMD2 apply no CFG to it (spec §4)",
          "same t and ε after one fake step: g changes by 1.9× its norm (relative L2); 6 → 5 gradient forwards"),
    Quirk("weight_decay", "loop.weight_decay", 0.01, None,
          "PyTorch's AdamW default, kept by the release; it pulls z toward 0. Kept in corrected: the paper's "
          "numbers were made with it",
          "with g = 0, the 500 iterations of the release's lr schedule shrink z to 0.707 of itself "
          "(∏(1 − 0.01·lr_i)); weight decay 0 leaves it unchanged"),
    Quirk("fake_t_range", "fake.t_sampler_options", {"min_ratio": 0.02, "max_ratio": 0.5}, None,
          "the release narrows the fake update's t to [21, 499] by mutating its config; kept in corrected: "
          "the fake score is only queried on that range",
          "the fake update's t stays in [21, 499] for all 500 iterations; the uniform sampler's own range "
          "reaches 979"),
)

SUITE_CHANGES: tuple[Change, ...] = (
    Change("psr_true_sides", "PSR mask uses the true latent h and w",
           "the release uses the width for both: portrait inputs silently get a smaller threshold and landscape "
           "inputs stop at its assert once t is large enough (spec §6)",
           "12×8 (portrait) latent: k = 2 vs 3 at t = 101 and the release's PSR loss is 0.58× the suite's; "
           "8×12 (landscape): the release's run stops at t ≥ 433",
           ("loop.identity_options", {"sides": "ww"})),
    Change("no_wasted_uncond", "no unconditional pass in the fake update",
           "the release computes it and discards it: one wasted UNet pass",
           "fake update 1 forward instead of 2 (7 instead of 8 per iteration); φ after the step equal to 1e-6 "
           "relative"),
    Change("no_relevance_graph", "no autograd graph in the relevance pass", "nothing is differentiated through it",
           "the release's pass saves ~5.4 MB of activations for a backward nobody runs on the tiny 8×8 latent, "
           "the suite's none; R equal to 3e-5"),
    Change("nonfinite_zeroed", "non-finite gradient entries are zeroed and counted per step",
           "the release's nan_to_num maps ±inf to ±max-float silently",
           "an inf entry of g: the release's 3.4e38 overflows AdamW's second moment to inf, freezing that entry "
           "of z for the rest of the run (moved 0.0 in the next 19 steps; the others 0.38); the suite zeroes it "
           "for that step, counts it, and the entry moves on (0.71)"),
    Change("shared_unet_adapters", "one UNet with adapters when the style base is the real base",
           "the release deep-copies the pipeline; adapter outputs equal merged weights to float rounding",
           "g of the adapter vs an fp32-merged copy of the same weights: 6e-5 relative L2"),
    Change("fake_reinit", "the fake LoRA is re-initialised, seeded, for every image",
           "otherwise a result depends on which images ran before it on the same process",
           "4 iterations: an image's result is bit-identical alone or after another image; without the reset "
           "51 dB apart"),
    Change("seeded_streams", "every random draw comes from generators seeded by (seed, image id, step, stream)",
           "two methods with one seed see the same t and ε; reruns are bit-identical",
           "SMS and DDS draw the same t at every step from one seed (another seed: other t)"),
    Change("fp16_lora_merge", "the style LoRA is an fp32 adapter (shared base) or merged in fp32 (own style base)",
           "the release merges into a deep copy of its pipeline with up·down formed in fp16 (spec §2); fp32 is "
           "what the LoRA's weights say",
           "g 5.4e-4 (shared base) and 4.0e-5 (own style base) relative L2 from the release's merge; full size "
           "2e-4 and 3e-5",
           ("model.release_lora_merge", True)),
    Change("input_resize", "short side → resolution with both sides rounded to multiples of 8, antialiased "
           "bilinear; EXIF orientation applied and alpha composited on white (sms/images.py)",
           "the release takes int(side·scale), bilinear without antialias, and neither rotates nor composites; "
           "its VAE then crops the odd pixels. The option reproduces the size and resampling only: a photo "
           "stylised sideways is a bug, not a result",
           "500×375 → 680×512 (suite) vs 682×512 (release); 128×96 at 64 px: 88×64 vs 85×64, latents 11×8 vs "
           "10×8; antialias changes the input by 8.8e-4 on average",
           ("loop.input_resize", "release")),
    Change("output_image", "the result is the final decode, resized to the source size with antialias and "
           "rounded to 8 bit",
           "the release saves its last 50-iteration preview: truncated to 8 bit, bicubic to 256 px on the short "
           "side and back (it also pastes the source beside it in the same PNG, which the option does not)",
           "PSNR against the float decode: tiny 59.0 dB (suite) vs 32.4 dB (release); full size 58.6 vs 30 dB",
           ("loop.output_image", "release")),
    Change("empty_caption", "an empty caption gives y = \"<style>\"",
           "the release always formats \"<style>, <caption>\", so an empty caption leaves \"<style>, \"; its "
           "scripts always pass a caption, so no option: the trailing comma is an artefact, not a setting",
           "one extra ',' token: the target embedding moves 0.10 and g 0.22 relative L2"),
    Change("scheduler_config", "SD-1.5's DDIM settings with the checkpoint's betas (spec §3's grid for every "
           "style)",
           "the release takes the style checkpoint's own scheduler config (its pipeline forces only steps_offset "
           "1); no option: one grid keeps methods and styles comparable",
           "timestep_spacing 'linspace': 250 of the 500 grid points move (t = 0, 2, 4, … at the low end); "
           "rescale_betas_zero_snr: ᾱ_999 = 0 instead of 0.0047; 'trailing' gives the same grid"),
)


def corrected_overrides() -> dict:
    """The corrected profile's method settings, derived from the table above."""
    return {quirk.setting: quirk.corrected for quirk in RELEASE_QUIRKS
            if quirk.corrected is not None and not quirk.setting.startswith("loop.")}


def release_pixel_settings() -> dict[str, dict]:
    """{"loop": …, "model": …, "method": …}: every ``SUITE_CHANGES`` option switched to the release's value,
    to match the release's pixels (with the ``official`` profile)."""
    settings: dict[str, dict] = {"loop": {}, "model": {}, "method": {}}
    for change in SUITE_CHANGES:
        if change.option is not None:
            section, name = change.option[0].split(".", 1)
            settings[section][name] = change.option[1]
    return settings
