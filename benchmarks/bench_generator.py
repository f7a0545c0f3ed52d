"""The feed-forward generator against the per-image path (issue 14): one table.

    python benchmarks/bench_generator.py                                   # tiny and full-size SD-1.5 (random) on CPU
    python benchmarks/bench_generator.py --models sd15-random --device cuda --steps 20 --batch 4

Per model and method: training seconds per step (median over the steps after the first; B crops per step:
VAE encode, G_θ forward/backward, the method's g with one t and ε per crop, its auxiliary update), inference
seconds per image and images/s with the trained generator (a batch's encode + G + decode over its images,
median of the sidecars), and the per-image path's seconds per iteration (median of ``--iters`` iterations
after a warm-up) and seconds per image projected at the method's own N (SMS: 500). Speed-up = per-image
s/image ÷ generator s/image. ``sd15-random`` is the full SD-1.5 architecture with random weights (runtime does
not depend on weight values) and the default ≈ 43.7 MB generator; tiny uses the tiny generator.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from PIL import Image

from benchmarks import stacks
from sms.config import RunConfig, resolve
from sms.generator_infer import stylize_with_generator
from sms.generator_train import TrainConfig, train_generator
from sms.loop import stylize_image
from sms.method import Prompts
from sms.models import ModelSpec
from workflow.discovery import load_methods

COLUMNS = ("model", "device", "method", "batch", "train s/step", "generator s/image", "generator images/s",
           "per-image s/iter", "per-image N", "per-image s/image", "speed-up ×")


def photos(folder: Path, count: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo{i}.png" for i in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return paths


def measure(model: str, method: str, args, root: Path) -> list[str]:
    size = 64 if model == "tiny" else 512
    spec = ModelSpec(base=model, device=args.device)
    models = stacks.load(spec)
    config = RunConfig(method=method, prompts=Prompts("watercolor style"), model=stacks.prepare_spec(spec),
                       loop_overrides={"resolution": size, "iters": args.iters + 1})
    paths = photos(root / "photos", args.images, size)
    train = TrainConfig(steps=args.steps, batch_size=args.batch, crop=size, checkpoint_every=args.steps,
                        architecture="tiny" if model == "tiny" else "default")
    run_dir = root / f"{model}-{method}"
    train_generator(paths, config, train, run_dir, models=models, progress=False)
    logged = [json.loads(line)["seconds"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train_step = statistics.median(logged[1:] or logged)
    out = root / f"{model}-{method}-out"
    stylize_with_generator(paths, run_dir, out, batch_size=args.batch, models=models)
    per_image = statistics.median(json.loads((out / f"{p.stem}.json").read_text())["timings"]["seconds_total"]
                                  for p in paths)
    per_iter = per_image_seconds_per_iter(paths[0], config, models)
    n = resolve(RunConfig(method=method)).loop.iters
    projected = per_iter * n
    stacks.free_memory(models.device)
    return [model, args.device, method, str(args.batch), f"{train_step:.3g}", f"{per_image:.3g}",
            f"{1 / per_image:.3g}", f"{per_iter:.3g}", str(n), f"{projected:.4g}", f"{projected / per_image:.0f}"]


def per_image_seconds_per_iter(path: Path, config: RunConfig, models) -> float:
    """Median seconds per iteration of the per-image loop (its first iteration dropped as warm-up)."""
    times: list[float] = []
    stylize_image(Image.open(path).convert("RGB"), path.stem, models, resolve(config), progress=False,
                  on_step=lambda step, z: times.append(time.perf_counter()))
    gaps = np.diff(times)
    return float(np.median(gaps)) if len(gaps) else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,sd15-random", help="comma-separated: tiny, sd15-random")
    parser.add_argument("--methods", default="sms,dds", help="comma-separated registered methods")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 20 tiny, 3 sd15-random)")
    parser.add_argument("--batch", type=int, default=None, help="crops per step and images per forward (default 4, 1)")
    parser.add_argument("--images", type=int, default=4, help="images stylised with the generator")
    parser.add_argument("--iters", type=int, default=None, help="per-image iterations timed (default 10, 2)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    load_methods()
    threads = torch.get_num_threads()
    rows = []
    for model in args.models.split(","):
        tiny = model == "tiny"
        settings = argparse.Namespace(**vars(args))
        settings.steps = args.steps or (20 if tiny else 3)
        settings.batch = args.batch or (4 if tiny else 1)
        settings.iters = args.iters or (10 if tiny else 2)
        torch.set_num_threads(1 if tiny and args.device == "cpu" else threads)  # tiny: one thread is as fast
        for method in args.methods.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(measure(model, method, settings, Path(tmp)))
                print(" | ".join(rows[-1]), file=sys.stderr)
    table = "\n".join(["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
                       *["| " + " | ".join(row) + " |" for row in rows]])
    text = f"torch {torch.__version__}, threads {torch.get_num_threads()}\n\n{table}"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
