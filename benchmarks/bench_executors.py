"""`local` against `ray` on the same images, each run as a user runs it (`sms stylize …`, a fresh process, Ray's
local cluster started and stopped by the command), and one table printed:

    python benchmarks/bench_executors.py                       # tiny models on the CPU: 8 images, 1 and 2 workers
    python benchmarks/bench_executors.py --images 16 --iters 100 --device cuda --gpus-per-worker 1

Columns: wall seconds of the whole command (imports, cluster and model start-up included), images/s over it,
time to the first finished image, images/s once started (between the first and the last finished image),
seconds per image (median of the sidecars' seconds_total: the optimisation itself), and the executor's overhead
per image: how long a worker waits between two images while the driver collects the result, writes it, reads
the next input and hands it over (median gap between a worker's consecutive images, ray_workers.jsonl).
Rows: local; local split by hand into one `--shard i/n` process per worker (today's way to use two devices);
ray with each worker count.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("executor", "workers", "wall s", "images/s", "first result s", "steady images/s", "s/image",
           "overhead s/image")


def write_images(folder: Path, count: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = [folder / f"img{i:03d}.png" for i in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return paths


def sms_stylize(images: Path, out: Path, args, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "workflow.cli", "stylize", str(images), "--out", str(out), "--model", "tiny",
               "--iters", str(args.iters), "--resolution", str(args.resolution), "--device", args.device,
               "--no-progress", *flags]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measure(label: str, workers: int, outs: list[Path], processes: list[subprocess.Popen], count: int) -> dict:
    start = time.time()
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{label}: exit {process.returncode}\n{err}")
    wall = time.time() - start
    sidecars = sorted((path for out in outs for path in out.glob("img*.json")), key=lambda p: p.stat().st_mtime)
    assert len(sidecars) == count, (label, len(sidecars))
    finished = [path.stat().st_mtime for path in sidecars]
    log = [json.loads(line) for out in outs if (out / "ray_workers.jsonl").is_file()
           for line in (out / "ray_workers.jsonl").read_text().splitlines()]
    return {"executor": label, "workers": workers, "wall s": wall, "images/s": count / wall,
            "first result s": finished[0] - start, "steady images/s": (count - 1) / (finished[-1] - finished[0]),
            "s/image": statistics.median(json.loads(p.read_text())["timings"]["seconds_total"] for p in sidecars),
            "overhead s/image": idle_gap(log)}


def idle_gap(log: list[dict]) -> float | None:
    gaps = []
    for worker in {r["worker"] for r in log}:
        runs = sorted((r["started"], r["ended"]) for r in log if r["worker"] == worker)
        gaps += [later[0] - earlier[1] for earlier, later in itertools.pairwise(runs)]
    return statistics.median(gaps) if gaps else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated")
    parser.add_argument("--gpus-per-worker", default="0", help="0 on a CPU-only machine (CPU workers)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        images = scratch / "images"
        images.mkdir()
        write_images(images, args.images, args.resolution)
        out = scratch / "local"
        rows.append(measure("local", 1, [out], [sms_stylize(images, out, args, "--executor", "local")], args.images))
        for count in [n for n in counts if n > 1]:
            outs = [scratch / f"shard{count}-{i}" for i in range(count)]
            rows.append(measure(f"local --shard i/{count}", count, outs,
                                [sms_stylize(images, o, args, "--shard", f"{i}/{count}") for i, o in enumerate(outs)],
                                args.images))
        for count in counts:
            out = scratch / f"ray{count}"
            rows.append(measure("ray", count, [out], [sms_stylize(images, out, args, "--executor", "ray", "--workers",
                                                                  str(count), "--gpus-per-worker", args.gpus_per_worker)],
                                args.images))
    print(f"{args.images} images, tiny models, {args.iters} iterations at {args.resolution} px on {args.device} "
          f"({os.cpu_count()} CPU cores)\n")
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(_cell(row[column]) for column in COLUMNS) + " |")
    print("\n" + prediction(rows))
    return 0


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def prediction(rows: list[dict], image_s: float = 60.0, stage_images: int = 400) -> str:
    """What the measured overhead and start-up mean for the paper's stages (100 images × 4 styles, ~60 s each)."""
    ray_rows = [row for row in rows if row["executor"] == "ray"]
    overhead = max((row["overhead s/image"] or 0.0) for row in ray_rows)
    start_up = min(row["first result s"] - row["s/image"] for row in ray_rows)
    lost = start_up + image_s / 2   # start-up once per stage, and on average half an image of tail at its end
    shares = ", ".join(f"{stage_efficiency(n, image_s, stage_images, overhead, lost):.0%} on {n}" for n in (8, 32, 128))
    return (f"Prediction: images/s grow linearly with N GPUs (N / {image_s:.0f} s for SD-1.5 at ~{image_s:.0f} s an "
            f"image): the executor's overhead, {overhead * 1e3:.0f} ms per image here, is {overhead / image_s:.2%} of "
            f"an image, and one driver could keep ~{image_s / max(overhead, 1e-3):.0f} workers busy. What bends the "
            f"line is per stage, not per image: {start_up:.0f} s of start-up here (cluster, imports, model load; "
            f"more for SD-1.5 weights) and the tail while the last images finish, paid by each of the 22 stylise "
            f"stages, so a {stage_images}-image stage keeps its GPUs busy {shares} GPUs. On a 2-core machine "
            "the driver, Ray and the workers share the cores, so its steady images/s move with the machine's load.")


def stage_efficiency(gpus: int, image_s: float, images: int, overhead: float, lost: float) -> float:
    busy = images * (image_s + overhead) / gpus
    return images * image_s / gpus / (busy + lost)


if __name__ == "__main__":
    sys.exit(main())
