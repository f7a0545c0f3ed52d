"""Stylise a list of image files into a results folder: resumable, shardable, one bad file never stops the rest.

Three steps, separable so that an executor may run the middle one on another machine (workflow/ray_executor.py):
:func:`plan_images` (which images are pending) → :func:`compute_image` (one image from its file's bytes and a
model stack: the PNG, the preview and the sidecar, nothing written) → :func:`write_output` (atomically), and
:func:`finish_folder` (the manifest). :func:`stylize_files` does all three in this process.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from sms.config import ResolvedRun, RunConfig, method_class, resolve
from sms.exemplars import choose_exemplar
from sms.images import ImageLoadError, load_rgb, read_image_file
from sms.loop import stylize_image
from sms.models.loading import TINY
from sms.models.stack import ModelSpec, ModelStack, load_stack
from sms.outputs import atomic_write_bytes, atomic_write_json, png_bytes
from sms.results import image_id, is_finished, output_paths, rebuild_manifest
from sms.rng import RandomStreams
from sms.sidecars import base_sidecar, loop_sidecar, stylizer_sidecar
from sms.stylizer import needs_exemplar, uses_style_weights
from sms.weights import reference_digest


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


def weight_identities(spec: ModelSpec, style: bool = True) -> dict[str, str | None]:
    """The contents of the weights a run uses (sha256, cached by path, size and mtime): replacing a file in
    place changes the digest below, so its results are recomputed instead of kept as finished. ``style``:
    whether the run uses the style's LoRA and style checkpoint."""
    if not style:
        return {"base": reference_digest(spec.base), "configs": [spec.single_file_config]}
    return {"base": reference_digest(spec.base), "style_base": reference_digest(spec.style_base),
            "style_lora": reference_digest(spec.style_lora),
            "configs": [spec.single_file_config, spec.style_base_config]}


def config_digest(run: ResolvedRun) -> str:
    """What makes a result finished: the resolved settings and the contents of every file they name (the SD
    weights, a method's own network, the exemplar image)."""
    weights = weight_identities(run.run.model, uses_style_weights(run.method_cls)) \
        if run.method_cls.needs_diffusion else {}
    own = {label: reference_digest(path) for label, path in run.method_cls.weights(run).items()} \
        if not run.is_distillation else {}
    payload = {**run.as_dict(), "weights": weights, "method_weights": own,
               "exemplar_sha256": reference_digest(run.run.exemplar)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ImageTask:
    """One pending image: what computing it needs besides its bytes and a model stack. Picklable: the run
    travels as its RunConfig and is resolved where it runs (plugin methods resolve on that process's registry)."""

    image_id: str
    source: Path          # as given: failures are reported under it
    location: str         # its absolute path, recorded in the sidecar
    config: RunConfig     # this image's run, its caption applied
    digest: str           # config digest (weights' contents included): what makes a result finished
    out_dir: Path


@dataclass
class Plan:
    """One results folder's work: the pending images, and the ids already finished with the same config."""

    out_dir: Path
    tasks: list[ImageTask]
    finished: list[str]
    style_name: str = ""
    run_name: str = ""


@dataclass
class ImageOutput:
    image_id: str
    png: bytes
    preview: bytes | None   # the strip of intermediate decodes, if the run asks for one
    sidecar: dict


def plan_images(paths: list[Path], run_config: RunConfig, out_dir: Path, *, shard: str | None = None,
                style_name: str = "", run_name: str = "", captions: dict[str, str] | None = None) -> Plan:
    """This shard's images of ``paths`` that ``out_dir`` does not hold finished (same config digest);
    ``captions`` maps a path (as given) to its caption, else the run's caption is used."""
    index, count = parse_shard(shard)
    refuse_colliding_ids(paths)
    plan = Plan(Path(out_dir), [], [], style_name, run_name)
    if needs_exemplar(method_class(run_config.method)) and not run_config.exemplar:
        raise InputError(f"method {run_config.method!r} takes an exemplar style image and this run has none: "
                         "give the style an `exemplar:` (an image or a folder of them) in params.yaml, or "
                         "--exemplar by hand.")
    for i, path in enumerate(sorted(map(Path, paths), key=image_id)):
        if i % count != index:
            continue
        config = _config_for(run_config, (captions or {}).get(str(path)), image_id(path))
        digest = config_digest(resolve(config))
        if is_finished(plan.out_dir, image_id(path), digest):
            plan.finished.append(image_id(path))
        else:
            plan.tasks.append(ImageTask(image_id(path), path, str(path.resolve()), config, digest, plan.out_dir))
    return plan


def read_input(task: ImageTask) -> bytes:
    return read_image_file(task.source)


def models_kind(method: str) -> str:
    """Which stack a method runs on: 'none' (a classic method loads its own network), 'base' (the SD base alone:
    a sampling method that takes no LoRA), 'sampling' (the SD stack without the fake LoRA), or 'distillation'."""
    method_cls = method_class(method)
    if not method_cls.needs_diffusion:
        return "none"
    if method_cls.family == "score distillation":
        return "distillation"
    return "sampling" if uses_style_weights(method_cls) else "base"


def load_models(spec: ModelSpec, method: str = "sms") -> ModelStack | None:
    """The SD stack the method runs on (None for a classic method, which loads its own network)."""
    if spec.base == TINY and spec.device == "cpu":
        torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and immune to a busy second core
    kind = models_kind(method)
    if kind == "none":
        return None
    if kind == "distillation":
        return load_stack(spec)
    if kind == "base":   # never load a style checkpoint the method would not use
        spec = replace(spec, style_base=None, style_base_config=None, style_lora=None)
    return load_stack(replace(spec, with_fake=False))


def compute_image(task: ImageTask, data: bytes, models: ModelStack | None, *, progress: bool = True,
                  on_step: Callable[[int, torch.Tensor], None] | None = None) -> ImageOutput:
    """One image from its file's bytes, whatever the method's family; raises ImageLoadError for an input that
    cannot be used."""
    run = resolve(task.config)
    image = load_rgb(task.source, data)
    if not run.is_distillation:
        exemplar = load_rgb(Path(run.run.exemplar), read_image_file(Path(run.run.exemplar))) \
            if run.run.exemplar else None
        method = run.method_cls(run.method_config, models, run)
        result = method.stylize(image, task.image_id, RandomStreams(run.loop.seed, task.image_id),
                                exemplar=exemplar, progress=progress)
        return ImageOutput(task.image_id, png_bytes(result.image), None,
                           stylizer_sidecar(_common(task, data, image.size, run, models), result, run))
    result = stylize_image(image, task.image_id, models, run, progress=progress, on_step=on_step)
    preview = png_bytes(preview_strip(result.previews)) if result.previews else None
    return ImageOutput(task.image_id, png_bytes(result.image), preview,
                       loop_sidecar(_common(task, data, image.size, run, models), result, run))


def _common(task: ImageTask, data: bytes, size, run, models: ModelStack | None) -> dict:
    sidecar = base_sidecar(task.image_id, task.location, data, size, run, task.digest, models)
    if run.run.exemplar:
        sidecar["exemplar"] = {"path": run.run.exemplar, "sha256": reference_digest(run.run.exemplar)}
    return sidecar


def write_output(out_dir: Path, output: ImageOutput) -> None:
    """The preview, the PNG, then the sidecar, each atomically: the sidecar's presence marks it finished."""
    png, sidecar = output_paths(out_dir, output.image_id)
    if output.preview is not None:
        atomic_write_bytes(Path(out_dir) / "previews" / f"{output.image_id}.png", output.preview)
    atomic_write_bytes(png, output.png)
    atomic_write_json(sidecar, output.sidecar)


def finish_folder(plan: Plan) -> None:
    rebuild_manifest(plan.out_dir, plan.style_name, plan.run_name)


def failure_reason(error: BaseException) -> str:
    return str(error) if isinstance(error, ImageLoadError) else f"{type(error).__name__}: {error}"


def stylize_files(paths: list[Path], run_config: RunConfig, out_dir: Path, *, shard: str | None = None,
                  style_name: str = "", run_name: str = "", captions: dict[str, str] | None = None,
                  progress: bool = True, models: ModelStack | None = None) -> RunReport:
    """Stylise ``paths`` into ``out_dir`` in this process (:func:`plan_images` says which). Finished images
    are skipped, so a killed run resumes."""
    plan = plan_images(paths, run_config, out_dir, shard=shard, style_name=style_name, run_name=run_name,
                       captions=captions)
    report = RunReport(skipped_finished=list(plan.finished))
    if plan.tasks and models is None:
        models = load_models(run_config.model, run_config.method)
    for task in plan.tasks:
        try:
            write_output(plan.out_dir, compute_image(task, read_input(task), models, progress=progress))
        except Exception as error:  # noqa: BLE001  one image's failure (e.g. out of memory) must not stop the rest
            if not isinstance(error, ImageLoadError):
                traceback.print_exc(file=sys.stderr)
            report.failed[str(task.source)] = failure_reason(error)
            continue
        report.written.append(task.image_id)
    finish_folder(plan)
    return report


def refuse_colliding_ids(paths) -> None:
    by_id: dict[str, list[str]] = {}
    for path in paths:
        by_id.setdefault(image_id(Path(path)), []).append(str(path))
    clashes = {name: found for name, found in by_id.items() if len(found) > 1}
    if clashes:
        listed = "; ".join(f"{name}: {', '.join(found)}" for name, found in sorted(clashes.items()))
        raise InputError(f"these inputs would write the same output file (same name stem): {listed}. Rename them "
                         f"or stylise them into different --out folders.")


def _config_for(run_config: RunConfig, caption: str | None, image: str) -> RunConfig:
    """One image's run: its caption, and its own exemplar file when the run names a folder of them."""
    if run_config.exemplar and needs_exemplar(method_class(run_config.method)):   # others: resolve drops it
        run_config = replace(run_config, exemplar=choose_exemplar(run_config.exemplar, resolve(run_config).loop.seed,
                                                                  image))
    if caption is None or caption == run_config.prompts.caption:
        return run_config
    return replace(run_config, prompts=replace(run_config.prompts, caption=caption))


def preview_strip(frames: list[Image.Image]) -> Image.Image:
    """The intermediate decodes side by side, left to right in iteration order."""
    strip = Image.new("RGB", (sum(frame.width for frame in frames), max(frame.height for frame in frames)))
    x = 0
    for frame in frames:
        strip.paste(frame, (x, 0))
        x += frame.width
    return strip
