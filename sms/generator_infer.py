"""Stylise images with a trained G_θ in one forward pass each (issue 14): ``sms stylize --generator RUN_DIR``.

Same outputs as the per-image loop (PNG + sidecar, the manifest), so eval/ and analysis/ read them unchanged;
the sidecar's config is the training run's, with ``generator`` saying which weights and ``timings`` the time
per image (a batch's time over its images: encode, G, decode). Images of one size go through together, up to
``batch_size`` at a time; finished images (same generator file and settings) are kept, so a rerun resumes.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from sms.config import ResolvedRun, RunConfig, from_dict, resolve
from sms.generator import GeneratorConfig, LatentGenerator
from sms.generator_checkpoint import generator_weights
from sms.hashing import sha256_file
from sms.image_tensors import input_tensor, tensor_to_image
from sms.images import ImageLoadError, load_rgb, read_image_file
from sms.loop import decode, encode
from sms.method import Prompts
from sms.models.stack import ModelSpec, ModelStack
from sms.outputs import png_bytes
from sms.results import image_id, is_finished, rebuild_manifest
from sms.rng import RandomStreams
from sms.runner import (
    ImageOutput,
    InputError,
    RunReport,
    failure_reason,
    load_models,
    refuse_colliding_ids,
    write_output,
)
from sms.sidecars import base_sidecar

WEIGHTS = "generator.safetensors"


@dataclass
class TrainedGenerator:
    network: LatentGenerator
    run_config: RunConfig       # the training run's (model, prompts, loop: resolution, init, seed)
    info: dict                  # what the sidecar records about the weights

    @classmethod
    def load(cls, run_dir: Path, device: str | None = None) -> "TrainedGenerator":
        path = Path(run_dir) / WEIGHTS
        if not path.is_file():
            raise InputError(f"{run_dir} has no {WEIGHTS}: train it first (`sms train-generator … --out {run_dir}`; "
                             "rerunning the same command resumes an unfinished training).")
        tensors, meta = generator_weights(path)
        config = from_dict(GeneratorConfig, meta["generator"]["config"])
        network = LatentGenerator(config)
        network.load_state_dict(tensors)
        run_config = run_config_of(meta["run"], device)
        network.to(run_config.model.device).eval()
        info = {"run_dir": str(Path(run_dir).resolve()), "sha256": sha256_file(path),
                "training_digest": meta["config_digest"], "steps": meta["train"]["steps"],
                "parameters": meta["generator"]["parameters"]}
        return cls(network, run_config, info)


def run_config_of(recorded: dict, device: str | None = None) -> RunConfig:
    """The RunConfig a training recorded (``ResolvedRun.as_dict``), on ``device`` if given."""
    model = from_dict(ModelSpec, recorded["model"])
    prompts = Prompts(recorded["prompts"]["style"], recorded["prompts"]["caption"])
    return RunConfig(method=recorded["method"], profile=recorded["profile"], prompts=prompts,
                     model=replace(model, device=device) if device else model,
                     loop_overrides=recorded["loop"], method_overrides=recorded["method_config"])


def inference_digest(trained: TrainedGenerator, run: ResolvedRun) -> str:
    payload = {"generator": trained.info["sha256"], "resolution": run.loop.resolution, "init": run.loop.init,
               "input_resize": run.loop.input_resize, "seed": run.loop.seed, "models": run.run.model.base}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def stylize_with_generator(paths: list[Path], run_dir: Path, out_dir: Path, *, batch_size: int = 8,
                           device: str | None = None, style_name: str = "", run_name: str = "",
                           models: ModelStack | None = None) -> RunReport:
    trained = TrainedGenerator.load(run_dir, device)
    run = resolve(trained.run_config)
    digest = inference_digest(trained, run)
    out_dir = Path(out_dir)
    refuse_colliding_ids(paths)
    report = RunReport()
    pending: dict[tuple, list[tuple[Path, bytes, torch.Tensor, tuple[int, int]]]] = {}
    for path in sorted(map(Path, paths), key=image_id):
        if is_finished(out_dir, image_id(path), digest):
            report.skipped_finished.append(image_id(path))
            continue
        try:
            data = read_image_file(path)
            image = load_rgb(path, data)
        except ImageLoadError as error:
            report.failed[str(path)] = failure_reason(error)
            continue
        x = input_tensor(image, run.loop.resolution, run.loop.input_resize)
        pending.setdefault(tuple(x.shape), []).append((path, data, x, image.size))
    if pending:
        models = models or load_models(trained.run_config.model)
    for group in pending.values():
        for start in range(0, len(group), batch_size):
            batch = group[start:start + batch_size]
            try:
                for output in _stylize_batch(batch, trained, run, digest, models):
                    write_output(out_dir, output)
                    report.written.append(output.image_id)
            except Exception as error:  # noqa: BLE001  one batch's failure (e.g. out of memory) must not stop the rest
                traceback.print_exc(file=sys.stderr)
                report.failed.update({str(path): failure_reason(error) for path, *_ in batch})
    rebuild_manifest(out_dir, style_name, run_name)
    return report


@torch.no_grad()
def _stylize_batch(batch, trained: TrainedGenerator, run: ResolvedRun, digest: str,
                   models: ModelStack) -> list[ImageOutput]:
    device = models.device
    began = time.perf_counter()
    ids = [image_id(path) for path, *_ in batch]
    z_src = encode(models, torch.cat([x for _, _, x, _ in batch]), [RandomStreams(run.loop.seed, i) for i in ids],
                   run.loop.init)
    pixels = decode(models, trained.network(z_src))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - began) / len(batch)
    outputs = []
    for row, (path, data, _, size) in enumerate(batch):
        sidecar = {**base_sidecar(ids[row], str(path.resolve()), data, size, run, digest, models),
                   "iterations": 0, "generator": trained.info, "batch_size": len(batch),
                   "timings": {"seconds_total": seconds, "seconds_iterations": 0.0, "seconds_per_iter": None},
                   "peak_memory_bytes": None, "unet_forwards": {"total": 0, "per_iter": None},
                   "nonfinite": {"total": 0, "steps": []}, "trace": {}}
        outputs.append(ImageOutput(ids[row], png_bytes(tensor_to_image(pixels[row:row + 1], size)), None, sidecar))
    return outputs
