"""Train G_θ over a content collection with any registered method's gradient (Algorithm 1; issue 14).

    RUN_DIR/training.json            config, data manifest hash, generator size, status, timings
    RUN_DIR/log.jsonl                one line per step: t per sample, |g|, identity and fake losses, seconds
    RUN_DIR/checkpoints/step-N.safetensors   every ``checkpoint_every`` steps (the last ``keep_checkpoints``)
    RUN_DIR/generator.safetensors    θ of the finished run, with its config (what ``sms stylize --generator`` reads)

A step: B random crops → z_src (VAE, per-crop draws) → ``generator_step`` (the method's g with one t and ε per
crop, the grad trick + λ·identity through G_θ, then the method's auxiliary update on G's outputs). ANS and
every other timestep schedule run over the training steps. A rerun into the same RUN_DIR resumes from the
last checkpoint and ends bit-identical (CPU) to a run that was never stopped; a different config is refused.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers.optimization import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup
from safetensors.torch import save
from tqdm.auto import tqdm

from sms.config import ConfigError, RunConfig, resolve
from sms.generator import DEFAULT, TINY, GeneratorConfig, LatentGenerator
from sms.generator_checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from sms.generator_data import CropSource
from sms.generator_step import batch_streams, generator_step
from sms.identity import build_identity_loss
from sms.loop import encode
from sms.models.stack import ModelStack, load_stack
from sms.outputs import atomic_write_bytes, atomic_write_json
from sms.rng import RandomStreams
from sms.runner import weight_identities

ARCHITECTURES: dict[str, GeneratorConfig] = {"default": DEFAULT, "tiny": TINY}
TRAINING_SCHEMA = 1


@dataclass
class TrainConfig:
    """The suite's defaults (the paper publishes none): AdamW 1e-4, 4 crops of 512 px, 2,000 steps."""

    steps: int = 2000
    batch_size: int = 4
    crop: int = 512                 # pixels; the latent crop is crop / 8
    short_side: int | None = None   # resize each training image to this short side before cropping (None: as is)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "constant"      # constant | cosine, after ``warmup`` linear steps
    warmup: int = 0
    reconstruction_steps: int = 0   # explicit ‖G(z) − z‖² steps first (G starts as the identity anyway)
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    architecture: str = "default"   # default (≈ 43.7 MB, the paper's size) | tiny

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"unknown generator architecture {self.architecture!r}; use one of "
                              f"{', '.join(ARCHITECTURES)}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"unknown schedule {self.schedule!r}; use 'constant' or 'cosine'")
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train setting {name} must be ≥ 1, got {getattr(self, name)}")
        if self.crop % 8:
            raise ConfigError(f"crop must be a multiple of 8 pixels (the VAE's factor), got {self.crop}")

    @property
    def total_steps(self) -> int:
        return self.reconstruction_steps + self.steps


@dataclass
class TrainResult:
    out_dir: Path
    steps_run: int          # in this call (0: it was finished already)
    resumed_from: int
    seconds_per_step: float


def training_digest(run_config: RunConfig, train: TrainConfig, data_digest: str) -> str:
    payload = {"run": resolve(run_config).as_dict(), "train": asdict(train), "data": data_digest,
               "weights": weight_identities(run_config.model)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoints(out_dir: Path) -> list[Path]:
    return sorted((Path(out_dir) / "checkpoints").glob("step-*.safetensors"))


def train_generator(paths: Sequence[Path], run_config: RunConfig, train: TrainConfig, out_dir: Path, *,
                    models: ModelStack | None = None, progress: bool = True, restart: bool = False,
                    on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train into ``out_dir``, resuming from its last checkpoint; a finished run with the same config is kept.
    ``out_dir`` holding another config (settings, data or weights) is refused, or with ``restart`` cleared
    and trained anew (the pipeline's choice: its results follow params.yaml and the weight files)."""
    out_dir = Path(out_dir)
    run = resolve(run_config)
    loop = run.loop
    crops = CropSource.from_paths(paths, train.crop, loop.seed, train.short_side)
    data_digest = crops.manifest_digest()
    digest = training_digest(run_config, train, data_digest)
    record = _training_record(run, train, crops, data_digest, digest)
    previous = _read_json(out_dir / "training.json")
    if previous and previous.get("config_digest") != digest:
        if not restart:
            raise ConfigError(f"{out_dir} holds a generator trained with another config, data or weights (digest "
                              f"{previous.get('config_digest')}, now {digest}): train into a new --out folder, or "
                              f"pass --restart to discard it and train anew.")
        _clear(out_dir)
        previous = None
    found = checkpoints(out_dir)
    if previous and previous.get("status") == "finished" and (out_dir / "generator.safetensors").is_file():
        return TrainResult(out_dir, 0, train.total_steps, previous["timings"]["seconds_per_step"])

    models = models or load_stack(run_config.model)
    generator = LatentGenerator(ARCHITECTURES[train.architecture],
                                generator=torch.Generator().manual_seed(loop.seed)).to(models.device)
    method = run.method_cls(run.method_config, models, run.run.prompts)
    method.begin(RandomStreams(loop.seed, "generator"))
    auxiliary, aux_optimizers = method.auxiliary_state()
    optimizer = torch.optim.AdamW(generator.parameters(), lr=train.lr, betas=train.betas,
                                  weight_decay=train.weight_decay)
    scheduler = _scheduler(optimizer, train)
    optimizers = {"generator": optimizer, **aux_optimizers}
    live = {"generator": generator, "optimizers": optimizers, "auxiliary": auxiliary, "scheduler": scheduler}
    record["generator"] = generator.describe()
    start, seconds = 0, 0.0
    if found:
        tensors, meta = read_checkpoint(found[-1])
        start = restore_checkpoint(tensors, meta, **live)
        seconds = meta["seconds_training"]
    record.update(status="running", step=start)
    atomic_write_json(out_dir / "training.json", record)
    log = _Log(out_dir / "log.jsonl", start)
    identity = build_identity_loss(loop.identity, **loop.identity_options)
    bar = tqdm(total=train.total_steps, initial=start, desc=f"train {run_config.method} generator",
               disable=not progress, unit="step")
    for step in range(start, train.total_steps):
        began = time.perf_counter()
        pixels, ids = crops.batch(step, train.batch_size)
        streams = batch_streams(loop.seed, ids)
        z_src = encode(models, pixels, streams, loop.init)
        if step < train.reconstruction_steps:
            terms = _reconstruction_step(generator, z_src, optimizer)
        else:
            done, _ = generator_step(generator, method, z_src, streams, step - train.reconstruction_steps,
                                     train.steps, optimizer, loop, identity)
            terms = {"t": list(done.t), "distill_grad": float(done.distill_grad),
                     "identity_loss": float(done.identity_loss), "fake_loss": float(done.aux.get("fake_loss", 0.0))}
        scheduler.step()
        seconds += time.perf_counter() - began
        log.write({"step": step, **terms, "seconds": time.perf_counter() - began})
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if k != "t"}, refresh=False)
        if (step + 1) % train.checkpoint_every == 0 or step + 1 == train.total_steps:
            _checkpoint(out_dir, train, live, step + 1, {"config_digest": digest, "seconds_training": seconds})
        if on_step is not None:
            on_step(step)
    bar.close()
    _write_generator(out_dir / "generator.safetensors", generator, record)
    per_step = seconds / max(train.total_steps, 1)
    record.update(status="finished", step=train.total_steps,
                  timings={"seconds_training": seconds, "seconds_per_step": per_step})
    atomic_write_json(out_dir / "training.json", record)
    return TrainResult(out_dir, train.total_steps - start, start, per_step)


def _clear(out_dir: Path) -> None:
    for name in ("generator.safetensors", "training.json", "log.jsonl"):
        (out_dir / name).unlink(missing_ok=True)
    for stale in checkpoints(out_dir):
        stale.unlink()


def _training_record(run, train: TrainConfig, crops: CropSource, data_digest: str, digest: str) -> dict:
    return {"schema": TRAINING_SCHEMA, "config_digest": digest, "run": run.as_dict(), "train": asdict(train),
            "data": {"images": len(crops.paths), "sha256": data_digest, "skipped": crops.skipped,
                     "paths": [str(path) for path in crops.paths]}}


def _scheduler(optimizer, train: TrainConfig):
    if train.schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, train.warmup, train.total_steps)
    return get_constant_schedule_with_warmup(optimizer, train.warmup)


def _reconstruction_step(generator, z_src: torch.Tensor, optimizer) -> dict:
    loss = (generator(z_src) - z_src).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"reconstruction_loss": float(loss)}


def _checkpoint(out_dir: Path, train: TrainConfig, live: dict, step: int, meta: dict) -> None:
    save_checkpoint(out_dir / "checkpoints" / f"step-{step:07d}.safetensors", step=step, meta=meta, **live)
    for stale in checkpoints(out_dir)[:-train.keep_checkpoints]:
        stale.unlink(missing_ok=True)


def _write_generator(path: Path, generator: LatentGenerator, record: dict) -> None:
    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {key: record[key] for key in ("config_digest", "run", "train", "generator")}
    atomic_write_bytes(path, save(tensors, metadata={"sms": json.dumps(meta, default=str)}))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class _Log:
    """log.jsonl, cut back to the resumed step (lines past the last checkpoint are recomputed)."""

    def __init__(self, path: Path, start: int):
        self.path = path
        kept = []
        if path.is_file():
            kept = [line for line in path.read_text().splitlines() if _step_of(line) < start]
        atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())

    def write(self, entry: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def _step_of(line: str) -> int | float:
    """A log line's step; a line cut short by a kill counts as past every checkpoint."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")
