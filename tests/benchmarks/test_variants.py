"""The benchmark's variant families: which rows run where, and what each is compared by."""
from __future__ import annotations

from benchmarks import variants
from sms.models import ModelSpec


def _names(device: str, compile_: bool = False) -> list[str]:
    return [v.name for v in variants.select("sms", None, compile_, device)]


def test_cuda_only_and_compile_rows_are_selected_where_they_mean_something():
    cpu, cuda = _names("cpu"), _names("cuda")
    assert cpu[0] == cuda[0] == "reference"  # the baseline always runs first
    assert "batched+tf32" in cuda and "batched+tf32" not in cpu
    assert not {"batched+compile", "fast", "batched+bf16+compile+cudagraphs"} & set(cuda)
    assert {"batched+compile", "fast", "batched+bf16+compile+cudagraphs"} <= set(_names("cuda", compile_=True))
    assert "batched+bf16+compile+cudagraphs" not in _names("cpu", compile_=True)
    # naming a row selects it (plus the baseline), even a compile row without --compile
    chosen = variants.select("sms", variants.parse_selection("fast"), False, "cpu")
    assert [v.name for v in chosen] == ["reference", "fast"]
    assert [v.name for v in variants.select("dds", None, False, "cpu")] == ["default", "default+bf16"]


def test_rows_are_checked_in_the_arithmetic_they_use():
    assert variants.dtype_of(ModelSpec()) == "float32"
    assert variants.dtype_of(ModelSpec(tf32=True)) == "tf32"
    assert variants.dtype_of(ModelSpec(dtype="bf16", tf32=True)) == "bfloat16"
    fast = dict(next(v for v in variants.SMS_VARIANTS if v.name == "fast").model)
    assert fast == {"dtype": "bfloat16", "channels_last": True, "compile": True}
    keys = {variants.spec_key(v.spec(ModelSpec())) for v in variants.SMS_VARIANTS}
    assert len(keys) == 8  # fp32 / bf16 / fp16 / channels-last / tf32 / compile / cudagraphs / fast: own stacks
    reference = variants.reference_spec(ModelSpec(dtype="float16", tf32=True, compile=True, compile_mode="x"))
    assert variants.spec_key(reference) == ("float32", False, False, None, False)
