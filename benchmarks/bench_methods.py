"""Time every registered method and its fast-path variants side by side and print one table.

    python benchmarks/bench_methods.py                                   # tiny models, CPU, every method
    python benchmarks/bench_methods.py --model sd15-random --device cuda --resolution 512   # full size, GPU
    python benchmarks/bench_methods.py --model sd15-random --resolution 512 --iters 1 --warmup 0 \\
        --methods sms --variants reference,sequential,batched,batched+bf16       # full size on a CPU (slow)

Full-size SD-1.5 with random weights times honestly (runtime does not depend on weight values).
Rows: each method's variants (benchmarks/variants.py), one fast-path change each; the first is the
baseline that speed-up and gradient error are measured against and always runs. Columns: s/iter
(device-synchronised, warm-up excluded), UNet forward rows per iteration, peak memory (CUDA
max_memory_allocated; the process's peak resident set on a CPU), s/image extrapolated to the method's
step count N, speed-up vs the baseline, UNet backward passes per iteration (benchmarks/timing.py),
gradient error vs the fp32 baseline with its dtype's tolerance (benchmarks/numerics.py), and the FLOP
floor (benchmarks/flops.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import flops, numerics, stacks, variants  # noqa: E402
from benchmarks.timing import Timing, time_variant  # noqa: E402
from sms.config import ResolvedRun, RunConfig, resolve  # noqa: E402
from sms.method import Prompts, methods  # noqa: E402
from sms.models import ModelSpec  # noqa: E402
from workflow.discovery import load_methods  # noqa: E402

COLUMNS = ("method", "variant", "s/iter", "forwards/iter", "peak GB", "s/image (N={N} extrapolated)",
           "speed-up vs reference order", "backward/iter", "grad err", "tol", "check", "floor s/iter",
           "measured/floor")


@dataclass
class Row:
    method: str
    variant: variants.Variant
    spec: ModelSpec
    run: ResolvedRun
    steps_per_image: int
    baseline: bool
    timing: Timing | None = None
    grad_error: float | None = None
    floor: float | None = None
    error: str | None = None

    @property
    def dtype(self) -> str:
        return variants.dtype_of(self.spec)

    @property
    def label(self) -> str:
        """The variant's name, with the dtype when --dtype (not the variant) made it other than fp32."""
        inherited = not {"dtype", "tf32"} & set(self.variant.model) and self.dtype != "float32"
        return f"{self.variant.name} ({self.dtype})" if inherited else self.variant.name


def _resolve(name: str, spec: ModelSpec, method_overrides: dict, args, **loop) -> ResolvedRun:
    profile = args.profile if args.profile in methods.get(name).profiles else None
    return resolve(RunConfig(method=name, profile=profile, prompts=Prompts("watercolor style", "a photo"),
                             model=spec, method_overrides=dict(method_overrides),
                             loop_overrides={"resolution": args.resolution, "seed": 0, **loop}))


def plan(names: list[str], base: ModelSpec, args) -> list[Row]:
    selected = variants.parse_selection(args.variants)
    rows = []
    for name in names:
        seen = set()
        for index, variant in enumerate(variants.select(name, selected, args.compile, args.device)):
            spec = variant.spec(base)
            if (variants.spec_key(spec), repr(variant.method)) in seen:
                continue  # e.g. default+bf16 under --dtype bfloat16: the same run as default
            seen.add((variants.spec_key(spec), repr(variant.method)))
            rows.append(Row(name, variant, spec, _resolve(name, spec, variant.method, args, iters=args.iters),
                            _resolve(name, spec, variant.method, args).loop.iters, baseline=index == 0))
    return rows


def _log(message: str) -> None:
    """Progress on stderr (full-size runs on a CPU take minutes per row); the table goes to stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(rows: list[Row], base: ModelSpec, args) -> tuple[int, tuple[int, ...]]:
    """Fill every row, loading one stack at a time (the fp32 reference stack first); return (F, latent shape)."""
    reference_key = variants.spec_key(variants.reference_spec(base))
    groups: dict[tuple, list[Row]] = {reference_key: []} if not args.no_grad_check else {}
    for row in rows:
        groups.setdefault(variants.spec_key(row.spec), []).append(row)
    photo, latents, forward_flops, g_refs = numerics.probe_photo(args.resolution), None, None, {}
    for key, group in groups.items():
        spec = group[0].spec if group else variants.reference_spec(base)
        _log(f"loading {spec.base} ({', '.join(map(str, key))}) on {spec.device}")
        models = stacks.load(spec)
        if latents is None:
            latents = numerics.probe_latents(models, (group or rows)[0].run, photo)
            forward_flops = flops.unet_forward_flops(models, tuple(latents[0].shape))
        if key == reference_key and not args.no_grad_check:
            for row in (r for r in rows if r.baseline):
                _log(f"{row.method}: fp32 reference gradient")
                reference_run = _resolve(row.method, variants.reference_spec(base), row.variant.method, args)
                g_refs[row.method] = numerics.one_gradient(models, reference_run, *latents)
        for row in group:
            _log(f"{row.method}/{row.label}: gradient check and timing")
            _measure_row(row, models, photo, latents, forward_flops, g_refs, key == reference_key, args)
        device = models.device
        del models
        stacks.free_memory(device)
    return forward_flops, tuple(latents[0].shape)


def _measure_row(row: Row, models, photo, latents, forward_flops: int, g_refs: dict, on_reference: bool,
                 args) -> None:
    try:
        if not args.no_grad_check:
            if row.baseline and on_reference:
                row.grad_error = 0.0  # g_ref was computed from this very row
            else:
                g = numerics.one_gradient(models, row.run, *latents)
                row.grad_error = numerics.relative_error(g, g_refs[row.method])
        warmup = max(args.warmup, 1) if row.spec.compile else args.warmup  # compilation is not timed
        row.timing = time_variant(models, row.run, photo, args.iters, warmup)
        row.floor = flops.floor_seconds(row.timing.forwards_per_iter, row.timing.backward_rows_per_iter,
                                        forward_flops, row.dtype, args.device)
    except Exception as error:  # noqa: BLE001  one broken variant must not hide the others' numbers
        row.error = f"{type(error).__name__}: {error}"


def _cells(row: Row, baseline: Row | None) -> list[str]:
    if row.error:
        return [row.method, row.label, f"failed ({row.error.splitlines()[0][:120]})", *[""] * 10]
    timing = row.timing
    peak = "n/a" if timing.peak_bytes is None else f"{timing.peak_bytes / 2**30:.2f}"
    if timing.peak_bytes is not None and timing.peak_kind == "RSS":
        peak += " RSS"
    speedup = (f"{baseline.timing.seconds_per_iter / timing.seconds_per_iter:.2f}×"
               if baseline is not None and baseline.timing else "–")
    backward = f"{timing.backward_passes_per_iter:g}"
    if timing.backward_rows_per_iter != timing.backward_passes_per_iter:
        backward += f" ({timing.backward_rows_per_iter:g} rows)"
    if row.grad_error is None:
        error_cell, tol_cell, check = "–", "–", "–"
    else:
        tolerance, check = numerics.verdict(row.grad_error, row.dtype)
        error_cell = "0 (ref)" if row.baseline and row.grad_error == 0.0 else f"{row.grad_error:.2e}"
        tol_cell = f"{tolerance:.0e}"
    return [row.method, row.label, f"{timing.seconds_per_iter:.4f}", f"{timing.forwards_per_iter:g}", peak,
            f"{timing.seconds_per_iter * row.steps_per_image:.1f}", speedup, backward, error_cell, tol_cell, check,
            f"{row.floor:.4f}", f"{timing.seconds_per_iter / row.floor:.1f}×"]


def format_table(rows: list[Row]) -> str:
    steps = {row.steps_per_image for row in rows}
    n_label = str(steps.pop()) if len(steps) == 1 else "own"
    header = [column.format(N=n_label) for column in COLUMNS]
    baselines = {row.method: row for row in rows if row.baseline}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(row, baselines.get(row.method))) + " |" for row in rows]
    return "\n".join(lines)


def notes(rows: list[Row], forward_flops: int, latent_shape: tuple[int, ...], args) -> list[str]:
    throughputs = {(row.dtype, args.device): flops.matmul_throughput(row.dtype, args.device)
                   for row in rows if row.floor is not None}
    tolerances = ", ".join(f"{dtype} < {tol:.0e}" for dtype, tol in numerics.TOLERANCE.items())
    grad_note = (f"grad err: ‖g − g_ref‖/‖g_ref‖ of one method.gradient (same z, t, ε; after begin + one update) "
                 f"vs the method's baseline on the fp32 stack; tolerances {tolerances}. Reduced precision fails "
                 f"1e-2 by the dtype, not the fast path: one bf16 UNet call is ~1e-2 off fp32 (full size, random weights), "
                 f"CFG multiplies that ~4×, and g is a difference of two such predictions (benchmarks/numerics.py).")
    speed_note = ("speed-up: the method's baseline s/iter ÷ the row's (sms: vs `reference`, the release's order of "
                  "work; others: vs their fp32 default). backward/iter: UNet outputs that received a gradient per "
                  "iteration (rows when a pass covered more than one). Timing excludes the warm-up iterations, and "
                  "the gradient check (unless --no-grad-check) has already run each variant once before it is timed.")
    memory_note = ("peak GB: CUDA max_memory_allocated during the timed iterations; 'RSS' = the CPU process's peak "
                   "resident set while the timed run lasted (weights and caches included: compare CPU rows with "
                   "each other only).")
    floor_note = ("measured/floor < 1: the big square matmul runs slower in that dtype than the model's own kernels "
                  "(e.g. fp16 on a CPU without fp16 GEMM), so for that row the 'floor' is no floor.")
    below_floor = any(r.floor and r.timing.seconds_per_iter < r.floor for r in rows)
    return [flops.describe(forward_flops, latent_shape, throughputs), grad_note, speed_note, memory_note,
            *([floor_note] if below_floor else [])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny | sd15-random | any model reference")
    parser.add_argument("--style-base", default=None,
                        help="a separate style UNet (e.g. sd15-random:1 or tiny:1, a differently seeded stand-in, "
                             "as the release's styles use their own checkpoints); default: the base with a LoRA")
    parser.add_argument("--style-lora", default=None, help="a style LoRA file (kohya/Civitai or diffusers)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", help="dtype of variants that set none (default float32)")
    parser.add_argument("--resolution", type=int, default=None, help="default: 64 (tiny) or 512")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--methods", default="", help="comma-separated; default: every registered method")
    parser.add_argument("--profile", default="harmonised", help="profile where a method has it, else its default")
    parser.add_argument("--plugins", action="append", default=[])
    parser.add_argument("--variants", default="", help="comma-separated variant names (default: all applicable; "
                        f"the baseline always runs); known: {', '.join(sorted(variants.known_names()))}")
    parser.add_argument("--compile", action="store_true", help="add the torch.compile rows (slow to compile)")
    parser.add_argument("--no-grad-check", action="store_true", help="skip the gradient-error columns")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as Markdown to this file")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 for tiny on CPU)")
    args = parser.parse_args(argv)
    args.resolution = args.resolution or (64 if args.model == "tiny" else 512)
    threads = args.threads or (1 if args.model == "tiny" and args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)  # tiny tensors: one thread is as fast, and immune to a busy core
    load_methods(args.plugins)
    names = [n for n in args.methods.split(",") if n] or methods.names()
    base = ModelSpec(base=args.model, style_base=args.style_base, style_lora=args.style_lora, dtype=args.dtype,
                     device=args.device)
    rows = plan(names, base, args)
    forward_flops, latent_shape = measure(rows, base, args)
    style = f" style_base={args.style_base}" if args.style_base else ""
    title = (f"model={args.model}{style} device={args.device} dtype={args.dtype} resolution={args.resolution} "
             f"latent={'×'.join(map(str, latent_shape[1:]))} iters={args.iters} warmup={args.warmup} "
             f"threads={torch.get_num_threads()} (torch {torch.__version__})")
    text = "\n".join([title, "", format_table(rows), "", *notes(rows, forward_flops, latent_shape, args)])
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    failed = [row for row in rows if row.error]
    for row in failed:
        print(f"FAILED {row.method}/{row.label}: {row.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
