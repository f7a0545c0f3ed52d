"""Time every registered method side by side and print one table.

    python benchmarks/bench_methods.py                                  # tiny models, CPU
    python benchmarks/bench_methods.py --model sd15-random --device cuda --dtype bfloat16 --resolution 512

Full-size SD-1.5 with random weights times honestly (runtime does not depend on weight values).
Columns: s/iter (device-synchronised, warm-up excluded), UNet forwards per iteration (sample rows),
peak memory (CUDA only), and s/image extrapolated to the method's own step count N.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sms.config import RunConfig, resolve  # noqa: E402
from sms.loop import stylize_image  # noqa: E402
from sms.method import Prompts, methods  # noqa: E402
from sms.models import ModelSpec, load_stack  # noqa: E402
from sms.plugins import load_methods  # noqa: E402


def _photo(resolution: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8))


def bench_method(name: str, models, args) -> dict:
    profile = args.profile if args.profile in methods.get(name).profiles else None
    base = RunConfig(method=name, profile=profile, prompts=Prompts("watercolor style", "a photo"),
                     model=models.spec, loop_overrides={"resolution": args.resolution, "seed": 0})
    steps_per_image = resolve(base).loop.iters
    image = _photo(args.resolution)
    warm = resolve(RunConfig(**{**base.__dict__, "loop_overrides": {**base.loop_overrides, "iters": args.warmup}}))
    stylize_image(image, "bench", models, warm, progress=False)
    timed = resolve(RunConfig(**{**base.__dict__, "loop_overrides": {**base.loop_overrides, "iters": args.iters}}))
    result = stylize_image(image, "bench", models, timed, progress=False)
    per_iter = result.seconds_iterations / args.iters
    return {"method": name, "profile": timed.profile, "s/iter": per_iter,
            "forwards/iter": sum(result.trace.forwards) / args.iters,
            "peak GB": (result.peak_memory_bytes or 0) / 2**30 if result.peak_memory_bytes else None,
            "N": steps_per_image, "s/image": per_iter * steps_per_image}


def format_table(rows: list[dict]) -> str:
    header = "| method | profile | s/iter | forwards/iter | peak GB | N | s/image (N extrapolated) |"
    lines = [header, "|" + "---|" * 7]
    for row in rows:
        peak = f"{row['peak GB']:.2f}" if row["peak GB"] is not None else "n/a (CPU)"
        lines.append(f"| {row['method']} | {row['profile']} | {row['s/iter']:.4f} | {row['forwards/iter']:.1f} | "
                     f"{peak} | {row['N']} | {row['s/image']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny | sd15-random | any model reference")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--resolution", type=int, default=None, help="default: 64 (tiny) or 512")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--methods", default="", help="comma-separated; default: every registered method")
    parser.add_argument("--profile", default="harmonised", help="profile where a method has it, else its default")
    parser.add_argument("--plugins", action="append", default=[])
    args = parser.parse_args(argv)
    args.resolution = args.resolution or (64 if args.model == "tiny" else 512)
    load_methods(args.plugins)
    names = [n for n in args.methods.split(",") if n] or methods.names()
    models = load_stack(ModelSpec(base=args.model, dtype=args.dtype, device=args.device))
    rows = [bench_method(name, models, args) for name in names]
    print(f"model={args.model} device={args.device} dtype={args.dtype} resolution={args.resolution} "
          f"iters={args.iters} (torch {torch.__version__})")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
