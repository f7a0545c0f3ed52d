"""Errors a user can act on: each names what is missing or wrong, where we looked, and how to fix it."""
from __future__ import annotations

from pathlib import Path

from sms.weights import PICKLE_SUFFIXES  # noqa: F401  (re-exported: the loaders refuse these)


class ModelLoadError(RuntimeError):
    """A model, checkpoint or LoRA could not be loaded; the message says what to do."""


def missing_model_message(what: str, reference: str, looked: list[str]) -> str:
    where = "; ".join(looked) if looked else "nowhere"
    return (
        f"Cannot find the {what} {reference!r} (looked in: {where}). Supply it as a local diffusers folder "
        f"(containing model_index.json, or config.json for a single component), as a single-file "
        f"'.safetensors' checkpoint, or as a Hugging Face hub id with network access "
        f"(unset HF_HUB_OFFLINE and allow downloads; this machine may have no network). "
        f"For the offline stand-in use the model spec 'tiny'."
    )


def missing_lora_message(reference: str) -> str:
    return (
        f"Cannot find the style LoRA file {reference!r}. Supply a path to a LoRA '.safetensors' file in "
        f"kohya/Civitai or diffusers format (e.g. downloaded from its Civitai page onto this machine); "
        f"with the model spec 'tiny', omit --style-lora to use the bundled stand-in LoRA."
    )


def pickle_refused_message(path: Path, what: str) -> str:
    return (
        f"Refusing to load the {what} {str(path)!r}: '{path.suffix}' files are Python pickles, which can run "
        f"arbitrary code when loaded. Convert it to '.safetensors', or pass allow_pickle=True "
        f"(CLI: --allow-pickle) if you trust its source."
    )


def unreadable_file_message(path: Path, what: str, error: Exception) -> str:
    size = path.stat().st_size if path.exists() else 0
    return (
        f"The {what} {str(path)!r} ({size:,} bytes) is not a readable safetensors file: {error}. "
        f"It is probably truncated or corrupt (an interrupted download?): download it again and compare "
        f"its size and sha256 with the source."
    )


def lora_mismatch_message(path: Path, unmatched: list[str], total: int) -> str:
    sample = ", ".join(unmatched[:3])
    return (
        f"The LoRA {str(path)!r} does not fit this UNet: {len(unmatched)} of its {total} UNet modules have no "
        f"counterpart of the same shape (e.g. {sample}). It was probably trained for another architecture "
        f"(SDXL, SD-2.x, a transformer model); use a LoRA made for SD-1.5-family checkpoints."
    )
