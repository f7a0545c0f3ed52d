"""What the benchmark compares: per method, a list of variants, each ONE fast-path change on its own.

A variant is (ModelSpec overrides, method-config overrides). The first variant of a family is its
baseline: the row that speed-up and gradient error are measured against, always run.

    sms:     reference (the release's order of work: wasted uncond pass in the fake update, autograd graph
             in the relevance pass) → sequential (no waste, one call per network) → batched (one
             mixed-adapter UNet call) → batched + bf16 | fp16 | channels_last | tf32 (CUDA only)
             | compile, bf16+compile+cudagraphs (CUDA only), fast = bf16+channels_last+compile (--compile only)
    others:  default (their harmonised/default profile) → default + bf16
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sms.models import ModelSpec


@dataclass(frozen=True)
class Variant:
    name: str
    model: dict[str, Any] = field(default_factory=dict)    # ModelSpec overrides
    method: dict[str, Any] = field(default_factory=dict)   # method Config overrides
    needs_compile: bool = False                             # only with --compile (or named in --variants)
    cuda_only: bool = False                                 # means nothing elsewhere (TF32, CUDA graphs)

    def spec(self, base: ModelSpec) -> ModelSpec:
        return dataclasses.replace(base, **self.model)


def _batched(name: str, cuda_only: bool = False, **model: Any) -> Variant:
    return Variant(f"batched+{name}" if name else "batched", dict(model), {"execution": "batched"},
                   needs_compile=bool(model.get("compile")), cuda_only=cuda_only)


SMS_VARIANTS = (
    Variant("reference", method={"execution": "reference"}),
    Variant("sequential", method={"execution": "sequential"}),
    _batched(""),
    _batched("bf16", dtype="bfloat16"),
    _batched("fp16", dtype="float16"),
    _batched("channels_last", channels_last=True),
    _batched("tf32", cuda_only=True, tf32=True),
    _batched("compile", compile=True),
    _batched("bf16+compile+cudagraphs", cuda_only=True, dtype="bfloat16", compile=True,
             compile_mode="reduce-overhead"),
    Variant("fast", {"dtype": "bfloat16", "channels_last": True, "compile": True}, {"execution": "batched"},
            needs_compile=True),
)
DEFAULT_VARIANTS = (Variant("default"), Variant("default+bf16", {"dtype": "bfloat16"}))

#: method name → its variant family (first = baseline); methods not listed get DEFAULT_VARIANTS
FAMILIES: dict[str, tuple[Variant, ...]] = {"sms": SMS_VARIANTS}


def family(method: str) -> tuple[Variant, ...]:
    return FAMILIES.get(method, DEFAULT_VARIANTS)


def known_names() -> set[str]:
    return {v.name for variants in (*FAMILIES.values(), DEFAULT_VARIANTS) for v in variants}


def parse_selection(text: str) -> set[str] | None:
    """``--variants`` → the names asked for (None: all applicable); unknown names are an error."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = names - known_names()
    if unknown:
        raise SystemExit(f"unknown variant(s) {sorted(unknown)}; known: {', '.join(sorted(known_names()))}")
    return names or None


def select(method: str, selected: set[str] | None, compile_: bool, device: str = "cpu") -> list[Variant]:
    """The method's baseline, plus its variants that are applicable and selected."""
    baseline, *rest = family(method)
    chosen = [baseline]
    for variant in rest:
        named = selected is not None and variant.name in selected
        if variant.needs_compile and not (compile_ or named):
            continue
        if variant.cuda_only and not device.startswith("cuda"):
            continue
        if selected is None or named:
            chosen.append(variant)
    return chosen


def dtype_of(spec: ModelSpec) -> str:
    """The arithmetic a spec's UNet calls use: float32, tf32 (fp32 weights on TF32 tensor cores), bfloat16
    or float16 — what the tolerance of its gradient check and its matmul throughput are looked up by."""
    from sms.models.stack import DTYPES

    name = {v: k for k, v in DTYPES.items() if k in ("float32", "bfloat16", "float16")}[DTYPES[spec.dtype]]
    return "tf32" if name == "float32" and spec.tf32 else name


def spec_key(spec: ModelSpec) -> tuple:
    """Variants whose specs share this key share one loaded model stack."""
    return dtype_of(spec), spec.channels_last, spec.compile, spec.compile_mode, spec.tf32


def reference_spec(base: ModelSpec) -> ModelSpec:
    """The fp32, eager, contiguous stack every gradient is compared against."""
    return dataclasses.replace(base, dtype="float32", channels_last=False, compile=False, compile_mode=None,
                               tf32=False)
