"""Stylise a list of image files into a results folder: resumable, shardable, one bad file never stops the rest."""
from __future__ import annotations

import hashlib
import json
import platform
import re
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
from sms.models.stack import ModelStack, load_stack
from sms.outputs import MANIFEST, atomic_write_json, atomic_write_png, is_finished, output_paths, write_manifest

DEMO_LABEL = "embedded default (tiny random models): numbers test the machinery, not the paper"


class InputError(ValueError):
    """The inputs of a run cannot be processed as given; the message says how to fix them."""


@dataclass
class RunReport:
    written: list[str] = field(default_factory=list)
    skipped_finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)   # path → reason


def image_id_for(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise InputError(f"--shard must be i/n with 0 ≤ i < n, got {text!r}")
    return int(match[1]), int(match[2])


def config_digest(run: ResolvedRun) -> str:
    return hashlib.sha256(json.dumps(run.as_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def stylize_files(paths: list[Path], run_config: RunConfig, out_dir: Path, *, shard: str | None = None,
                  style_name: str = "", run_name: str = "", captions: dict[str, str] | None = None,
                  progress: bool = True, models: ModelStack | None = None) -> RunReport:
    """Stylise ``paths`` into ``out_dir``; ``captions`` maps a path (as given) to its caption, else the
    run's caption is used. Finished images (same config digest) are skipped, so a killed run resumes."""
    index, count = parse_shard(shard)
    out_dir = Path(out_dir)
    report = RunReport()
    _refuse_colliding_ids(paths)
    mine = [Path(p) for i, p in enumerate(sorted(map(Path, paths), key=image_id_for)) if i % count == index]
    runs = {path: _run_for(run_config, (captions or {}).get(str(path))) for path in mine}
    pending = [p for p in mine if not is_finished(out_dir, image_id_for(p), config_digest(runs[p]))]
    report.skipped_finished = [image_id_for(p) for p in mine if p not in pending]
    if pending and models is None:
        if run_config.model.base == TINY and run_config.model.device == "cpu":
            torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and immune to a busy second core
        models = load_stack(run_config.model)
    for path in pending:
        image_id = image_id_for(path)
        try:
            image = load_rgb(path)
        except ImageLoadError as error:
            report.failed[str(path)] = str(error)
            continue
        run = runs[path]
        result = stylize_image(image, image_id, models, run, progress=progress)
        _write_outputs(out_dir, image_id, path, image.size, result, run, config_digest(run), models)
        report.written.append(image_id)
    _update_manifest(out_dir, style_name, run_name)
    return report


def _refuse_colliding_ids(paths) -> None:
    by_id: dict[str, list[str]] = {}
    for path in paths:
        by_id.setdefault(image_id_for(Path(path)), []).append(str(path))
    clashes = {image_id: found for image_id, found in by_id.items() if len(found) > 1}
    if clashes:
        listed = "; ".join(f"{image_id}: {', '.join(found)}" for image_id, found in sorted(clashes.items()))
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
        "schema": 1,
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


def _update_manifest(out_dir: Path, style_name: str, run_name: str) -> None:
    records = []
    for sidecar in sorted(out_dir.glob("*.json")):
        if sidecar.name == MANIFEST:
            continue
        data = json.loads(sidecar.read_text())
        records.append({"id": data["id"], "output": f"{data['id']}.png", "sidecar": sidecar.name,
                        "content": data["source"]["path"], "prompt": data["config"]["prompts"]["target"],
                        "style": style_name or data["config"]["prompts"]["style"],
                        "method": run_name or data["config"]["method"], "base_method": data["config"]["method"]})
    if records:
        write_manifest(out_dir, records)
