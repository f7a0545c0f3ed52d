"""The precision probe measures what it says: zero against itself, and CFG's amplification of a dtype's error."""
from benchmarks import precision
from sms.models import ModelSpec


def test_probe_is_exact_in_fp32_and_shows_cfg_amplifying_bf16_error():
    table = precision.measure(ModelSpec(style_base="tiny:1"), ["float32", "bfloat16"], resolution=64)
    assert set(table) == {"one UNet call ε_style(z_t; y)", "CFG(ε_style)", "CFG(ε_style) − CFG(ε_fake)",
                          *precision.G_CASES}
    assert all(row["float32"] < 1e-6 for row in table.values()), table  # same stack, same inputs: same numbers
    one_call, guided = table["one UNet call ε_style(z_t; y)"]["bfloat16"], table["CFG(ε_style)"]["bfloat16"]
    assert 1e-4 < one_call < 0.1
    assert guided > 2 * one_call  # CFG 4.5 multiplies a single call's rounding error
    text = precision.format_table(table, ["float32", "bfloat16"])
    assert text.count("\n") == len(table) + 1 and "| g (SMS as specified) |" in text


def test_whole_run_psnr_rows():
    psnr = precision.whole_runs(ModelSpec(), ["bfloat16"], iters=2, resolution=64)
    assert set(psnr) == {"fp32 batched", "fp32 reference order, seed 1", "bfloat16 batched"}
    assert psnr["fp32 batched"] >= 40  # the numerics guard's whole-run bound, here over 2 iterations
    assert psnr["fp32 reference order, seed 1"] < psnr["fp32 batched"]
