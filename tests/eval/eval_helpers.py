"""Helpers shared by the eval tests: tiny synthetic results folders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = 80  # art-fid feeds Inception at native size, which needs at least 75 px


def smooth_image(rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """A random image with structure at several scales (upsampled noise)."""
    coarse = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    fine = rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(coarse, dtype=np.float64) + fine, 0, 255).astype(np.uint8))


def write_results(root: Path, *, n: int = 4, method: str = "sms", style: str = "watercolor", seed: int = 0,
                  order: list[int] | None = None, names: list[str] | None = None) -> Path:
    """A results folder as the stylisation loop writes it. ``order`` permutes the manifest records and
    ``names`` renames the output files, without changing which content/prompt belongs to which output."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "content").mkdir(exist_ok=True)
    records = []
    for i in range(n):
        content = smooth_image(rng)
        output = np.clip(np.asarray(content, dtype=np.float64) * (0.6 + 0.1 * i) + rng.normal(0, 8 * (i + 1), (IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255)
        name = names[i] if names else f"out_{i:02d}"
        content.save(root / "content" / f"content_{i:02d}.png")
        Image.fromarray(output.astype(np.uint8)).save(root / f"{name}.png")
        sidecar = {
            "timings": {"seconds_total": 10.0 + i, "seconds_per_iter": 0.02 * (i + 1)},
            "peak_memory_bytes": (i + 1) * 2**30 if i % 2 == 0 else None,
            "unet_forwards": {"total": 1000 + i, "per_iter": 2.0},
            "iterations": 500,
        }
        (root / f"{name}.json").write_text(json.dumps(sidecar))
        records.append({"id": f"img{i:02d}", "output": f"{name}.png", "sidecar": f"{name}.json",
                        "content": f"content/content_{i:02d}.png", "prompt": f"a watercolor painting, photo {i}",
                        "style": style, "method": method})
    if order is not None:
        records = [records[i] for i in order]
    (root / "manifest.json").write_text(json.dumps({"records": records}))
    return root
