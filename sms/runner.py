"""Stylise a list of image files into a results folder: resumable, shardable, one bad file never stops the rest."""
from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from sms import __version__
from sms.config import ResolvedRun, RunConfig, resolve
from sms.hashing import sha256_file
from sms.images import ImageLoadError, load_rgb
from sms.loop import LoopResult, stylize_image
from sms.models.loading import TINY
from sms.models.stack import ModelSpec, ModelStack, load_stack
from sms.outputs import atomic_write_json, atomic_write_png
from sms.results import SIDECAR_SCHEMA, image_id, is_finished, output_paths, rebuild_manifest
from sms.weights import reference_digest

DEMO_LABEL = "embedded default (tiny random models): numbers test the machinery, not the paper"


class InputError(ValueError):
    """The inputs of a run cannot be processed as given; the message says how to fix them."""


@dataclass
class RunReport:
    written: list[str] = field(default_factory=list)
    skipped_finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)   # path → reason


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise InputError(f"--shard must be i/n with 0 ≤ i < n, got {text!r}")
    return int(match[1]), int(match[2])


def weight_identities(spec: ModelSpec) -> dict[str, str | None]:
    """The contents of the weights a run uses (sha256, cached by path, size and mtime): replacing a file in
    place changes the digest below, so its results are recomputed instead of kept as finished."""
    return {"base": reference_digest(spec.base), "style_base": reference_digest(spec.style_base),
            "style_lora": reference_digest(spec.style_lora),
            "configs": [spec.single_file_config, spec.style_base_config]}


def config_digest(run: ResolvedRun) -> str:
    payload = {**run.as_dict(), "weights": weight_identities(run.run.model)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stylize_files(paths: list[Path], run_config: RunConfig, out_dir: Path, *, shard: str | None = None,
                  style_name: str = "", run_name: str = "", captions: dict[str, str] | None = None,
                  progress: bool = True, models: ModelStack | None = None) -> RunReport:
    """Stylise ``paths`` into ``out_dir``; ``captions`` maps a path (as given) to its caption, else the
    run's caption is used. Finished images (same config digest) are skipped, so a killed run resumes."""
    index, count = parse_shard(shard)
    out_dir = Path(out_dir)
    report = RunReport()
    _refuse_colliding_ids(paths)
    mine = [Path(p) for i, p in enumerate(sorted(map(Path, paths), key=image_id)) if i % count == index]
    runs = {path: _run_for(run_config, (captions or {}).get(str(path))) for path in mine}
    pending = [p for p in mine if not is_finished(out_dir, image_id(p), config_digest(runs[p]))]
    report.skipped_finished = [image_id(p) for p in mine if p not in pending]
    if pending and models is None:
        if run_config.model.base == TINY and run_config.model.device == "cpu":
            torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and immune to a busy second core
        models = load_stack(run_config.model)
    for path in pending:
        name = image_id(path)
        try:
            image = load_rgb(path)
            run = runs[path]
            result = stylize_image(image, name, models, run, progress=progress)
            _write_outputs(out_dir, name, path, image.size, result, run, config_digest(run), models)
        except ImageLoadError as error:
            report.failed[str(path)] = str(error)
            continue
        except Exception as error:  # noqa: BLE001  one image's failure (e.g. out of memory) must not stop the rest
            traceback.print_exc(file=sys.stderr)
            report.failed[str(path)] = f"{type(error).__name__}: {error}"
            continue
        report.written.append(name)
    rebuild_manifest(out_dir, style_name, run_name)
    return report


def _refuse_colliding_ids(paths) -> None:
    by_id: dict[str, list[str]] = {}
    for path in paths:
        by_id.setdefault(image_id(Path(path)), []).append(str(path))
    clashes = {name: found for name, found in by_id.items() if len(found) > 1}
    if clashes:
        listed = "; ".join(f"{name}: {', '.join(found)}" for name, found in sorted(clashes.items()))
        raise InputError(f"these inputs would write the same output file (same name stem): {listed}. Rename them "
                         f"or stylise them into different --out folders.")


def _run_for(run_config: RunConfig, caption: str | None) -> ResolvedRun:
    if caption is None or caption == run_config.prompts.caption:
        return resolve(run_config)
    return resolve(replace(run_config, prompts=replace(run_config.prompts, caption=caption)))


def _write_outputs(out_dir: Path, image_id: str, source: Path, size, result: LoopResult, run: ResolvedRun,
                   digest: str, models: ModelStack) -> None:
    png, sidecar = output_paths(out_dir, image_id)
    if result.previews:
        atomic_write_png(out_dir / "previews" / f"{image_id}.png", preview_strip(result.previews))
    atomic_write_png(png, result.image)
    atomic_write_json(sidecar, build_sidecar(image_id, source, size, result, run, digest, models))


def preview_strip(frames: list[Image.Image]) -> Image.Image:
    """The intermediate decodes side by side, left to right in iteration order."""
    strip = Image.new("RGB", (sum(frame.width for frame in frames), max(frame.height for frame in frames)))
    x = 0
    for frame in frames:
        strip.paste(frame, (x, 0))
        x += frame.width
    return strip


def build_sidecar(image_id: str, source: Path, size, result: LoopResult, run: ResolvedRun, digest: str,
                  models: ModelStack) -> dict:
    iters = max(run.loop.iters, 1)
    forwards = sum(result.trace.forwards)
    return {
        "schema": SIDECAR_SCHEMA,
        "id": image_id,
        "label": DEMO_LABEL if run.run.model.base == TINY else "",
        "source": {"path": str(Path(source).resolve()), "sha256": sha256_file(source), "size": list(size)},
        "config": run.as_dict(),
        "config_digest": digest,
        "seed": run.loop.seed,
        "models": models.fingerprint(),
        "iterations": run.loop.iters,
        "timings": {"seconds_total": result.seconds_total, "seconds_iterations": result.seconds_iterations,
                    "seconds_per_iter": result.seconds_iterations / iters},
        "peak_memory_bytes": result.peak_memory_bytes,
        "unet_forwards": {"total": forwards, "per_iter": forwards / iters},
        "nonfinite": {"total": sum(result.trace.nonfinite),
                      "steps": [i for i, n in enumerate(result.trace.nonfinite) if n]},
        "trace": asdict(result.trace),
        "environment": {"suite": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "device": str(models.device), "dtype": run.run.model.dtype},
    }
