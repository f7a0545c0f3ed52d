"""One worker of the `ray` executor: a GPU share, one image at a time, its model stack kept across images.

It is sent an image's bytes and its run, and returns the PNG, the preview and the sidecar; it writes nothing.
Before each image it checks that this node resolves the run to the driver's config digest (the same weight
files at the same paths, the same suite), so a file missing or different on one node is named, not silently
used. The class is plain; workflow/ray_executor.py makes it an actor with Ray's restart and retry settings.
"""
from __future__ import annotations

import gc
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import ray

FAULT_ENV = "SMS_FAULT_EXIT_ONCE"   # "<image id>:<marker file>": the worker dies mid-image, once (tests)


class NodeSetupError(Exception):
    """This node cannot compute the driver's runs (files missing or different, methods not importable)."""


@dataclass
class Attempt:
    """One image's answer: its outputs, or why its input was refused, or why this node cannot run it."""

    image_id: str
    output: Any = None               # sms.runner.ImageOutput
    input_error: str | None = None   # recorded as failed at once, never retried
    setup_error: str | None = None   # stops the stage: every image of this node would fail the same way
    where: dict = field(default_factory=dict)   # worker, host, pid, GPU ids, start/end, seconds


def visible_device(device: str) -> str:
    """Ray shows a worker only its own GPUs, numbered from 0: the profile's ``cuda:3`` is this worker's ``cuda``."""
    return "cuda" if device.startswith("cuda") else device


class StylizeWorker:
    def __init__(self, index: int, plugins: list[str], fault: str | None = None):
        # nothing here may fail: a failed creation leaves a dead actor that Ray does not restart
        self.plugins, self.fault = plugins, fault
        self.identity = {"worker": index, "host": socket.gethostname(), "pid": os.getpid(),
                         "gpu_ids": [str(i) for i in ray.get_gpu_ids()],
                         "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        self.methods_loaded = False
        self.models, self.models_key = None, None

    @ray.method(retry_exceptions=True)
    def stylize(self, task, data: bytes) -> Attempt:
        from sms.images import ImageLoadError
        from sms.runner import compute_image

        started = time.time()
        try:
            load_seconds = self._prepare(task)
        except NodeSetupError as error:
            return Attempt(task.image_id, setup_error=str(error), where=self._where(started))
        try:
            output = compute_image(task, data, self.models, progress=False, on_step=self._fault_hook(task))
        except ImageLoadError as error:
            return Attempt(task.image_id, input_error=str(error), where=self._where(started, load_seconds))
        except Exception:
            self._drop_models()  # the retry starts from a fresh stack, as a replaced worker would (e.g. CUDA OOM)
            raise
        return Attempt(task.image_id, output, where=self._where(started, load_seconds))

    def _where(self, started: float, load_seconds: float = 0.0) -> dict:
        ended = time.time()
        return {**self.identity, "started": started, "ended": ended, "seconds": round(ended - started, 3),
                "model_load_seconds": round(load_seconds, 3)}

    def _prepare(self, task) -> float:
        """Methods registered, this node checked against the driver, and the task's models loaded (seconds)."""
        from sms.runner import load_models, models_kind

        if not self.methods_loaded:
            from workflow.discovery import load_methods

            try:
                load_methods(self.plugins)
            except Exception as error:  # a plugin folder missing on this node, a broken install
                raise NodeSetupError(f"worker on {self.identity['host']}: cannot load the methods "
                                     f"({type(error).__name__}: {error}). Every node needs the suite installed "
                                     "and the same --plugins folders (README: Scale out on Ray).") from error
            self.methods_loaded = True
        self._check_node(task)
        spec = task.config.model
        key = json.dumps([asdict(spec), models_kind(task.config.method)], sort_keys=True, default=str)
        if key == self.models_key:
            return 0.0
        self._drop_models()
        start = time.perf_counter()
        self.models = load_models(replace(spec, device=visible_device(spec.device)), task.config.method)
        self.models_key = key
        return time.perf_counter() - start

    def _check_node(self, task) -> None:
        from sms.config import ConfigError, resolve
        from sms.registry import UnknownName
        from sms.runner import config_digest
        from sms.weights import is_stand_in

        try:
            here = config_digest(resolve(task.config))   # weights' sha256 are cached: a stat per file after the first
        except (ConfigError, UnknownName) as error:
            raise NodeSetupError(f"worker on {self.identity['host']}: {error} The driver knows it: every node needs "
                                 "the same suite version and --plugins folders (README: Scale out on Ray).") from error
        if here == task.digest:
            return
        spec = task.config.model
        references = (spec.base, spec.style_base, spec.style_lora, spec.single_file_config, spec.style_base_config)
        missing = [ref for ref in references if ref and not is_stand_in(ref) and not Path(ref).expanduser().exists()]
        why = (f"not found on this node: {', '.join(missing)}" if missing else
               "its weight files or the suite's code differ from the driver's")
        raise NodeSetupError(f"worker on {self.identity['host']}: image {task.image_id!r} resolves to config digest "
                             f"{here}, the driver's is {task.digest}: {why}. Every node needs the same suite version "
                             "and the model and LoRA files at the same absolute paths (README: Scale out on Ray).")

    def _drop_models(self) -> None:
        if self.models is None:
            return
        import torch

        self.models, self.models_key = None, None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _fault_hook(self, task):
        image, _, marker = (self.fault or "").partition(":")
        if image != task.image_id or not marker or Path(marker).exists():
            return None

        def die_once(step, _z):
            if step >= 1:   # after the first iteration: the image is half done when its worker dies
                Path(marker).touch()
                os._exit(1)
        return die_once
