"""The `ray` executor: the pending images of one or more results folders fanned out to a pool of Ray actors,
one per GPU share (workflow/ray_worker.py), a task per image.

The driver reads each input and sends its bytes and run to an idle worker, receives the PNG and the sidecar,
and writes them atomically itself, so no filesystem is shared. Ray replaces a worker whose process dies
(killed, out of host memory, node lost) and retries its image (``max_restarts``, ``max_task_retries``); an
exception such as CUDA out of memory is retried the same way on a fresh model stack; an image refused for its
input is recorded as failed at once. One progress bar covers the stage, and each folder gets a log of what ran
where (``ray_workers.jsonl``: host, GPU ids, pid, start, end, seconds per image).
"""
from __future__ import annotations

import json
import os
import sys
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import ray
from ray.exceptions import ActorDiedError, RayError
from tqdm.auto import tqdm

from sms.images import ImageLoadError
from sms.runner import ImageTask, Plan, RunReport, failure_reason, finish_folder, read_input, write_output
from workflow.errors import UserError
from workflow.executor import ExecutorOptions
from workflow.ray_worker import FAULT_ENV, StylizeWorker

WORKER_LOG = "ray_workers.jsonl"


def run_on_ray(plans: list[Plan], options: ExecutorOptions, *, progress: bool = True,
               plugins: list[str] = ()) -> list[RunReport]:
    """Every plan's pending images on one pool of workers; one RunReport per plan. Whatever finished is written
    and listed in its folder's manifest even if the stage stops early (an error, Ctrl-C)."""
    reports = {plan.out_dir: RunReport(skipped_finished=list(plan.finished)) for plan in plans}
    tasks = [task for plan in plans for task in plan.tasks]
    try:
        if tasks:
            _refuse_cpu_workers_for_cuda(tasks, options)
            with connected(options):
                workers = start_workers(options, len(tasks), list(plugins))
                _Stage(workers, reports, options, progress).run(tasks)
    finally:
        for plan in plans:
            finish_folder(plan)
    return [reports[plan.out_dir] for plan in plans]


@contextmanager
def connected(options: ExecutorOptions):
    """The cluster at ``options.address`` or $RAY_ADDRESS, else a local one started for this run and stopped
    after. A connection made before (a test, a notebook) is used as is and left open."""
    if ray.is_initialized():
        yield
        return
    try:
        ray.init(address=options.address, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as error:
        where = options.address or os.environ.get("RAY_ADDRESS")
        raise UserError(f"cannot connect to the Ray cluster at {where!r} ({error}). Start it (`ray start --head` on "
                        "the head node), fix --ray-address or the profile's executor.address, or unset RAY_ADDRESS "
                        "to start a local cluster for the run.") from None
    try:
        yield
    finally:
        ray.shutdown()


def worker_count(resources: dict, options: ExecutorOptions, pending: int) -> int:
    """Workers to start: one per GPU share (each also takes a CPU), at most ``options.workers`` and one per image."""
    cpus, gpus = int(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    shares = cpus if options.gpus_per_worker == 0 else min(cpus, int(gpus / options.gpus_per_worker + 1e-9))
    if shares < 1:
        raise UserError(f"the Ray cluster has {gpus:g} GPU(s) and {cpus} CPU(s): not enough for one worker with "
                        f"gpus_per_worker={options.gpus_per_worker:g} and one CPU. Add GPU nodes, lower "
                        "--gpus-per-worker, or use 0 for CPU workers (with the profile's stylize.device cpu).")
    return min(shares, options.workers or shares, pending)


def start_workers(options: ExecutorOptions, pending: int, plugins: list[str]) -> list:
    count = worker_count(ray.cluster_resources(), options, pending)
    actor = ray.remote(StylizeWorker).options(num_cpus=1, num_gpus=options.gpus_per_worker, max_restarts=-1,
                                              max_task_retries=options.max_retries)
    print(f"ray: {count} worker(s) × {options.gpus_per_worker:g} GPU, up to {options.max_retries} retries per "
          f"image; what ran where: <results folder>/{WORKER_LOG}", file=sys.stderr)
    return [actor.remote(index, plugins, os.environ.get(FAULT_ENV)) for index in range(count)]


def _refuse_cpu_workers_for_cuda(tasks: list[ImageTask], options: ExecutorOptions) -> None:
    devices = sorted({task.config.model.device for task in tasks if task.config.model.device.startswith("cuda")})
    if devices and options.gpus_per_worker == 0:
        raise UserError(f"the runs use device {', '.join(devices)} but gpus_per_worker is 0 (CPU workers): set "
                        "--gpus-per-worker (e.g. 1) or the profile's executor.gpus_per_worker.")


class _Stage:
    """The driver's loop: an image to each idle worker; each answer written, logged and counted as it comes."""

    def __init__(self, workers: list, reports: dict[Path, RunReport], options: ExecutorOptions, progress: bool):
        self.idle, self.alive = list(workers), len(workers)
        self.running: dict = {}   # ObjectRef → (task, worker)
        self.reports, self.max_retries = reports, options.max_retries
        self.last_pid: dict[int, int] = {}
        self.failed, self.progress = 0, progress

    def run(self, tasks: list[ImageTask]) -> None:
        queue = deque(tasks)
        self.bar = tqdm(total=len(tasks), unit="img", desc="stylise (ray)", disable=not self.progress,
                        dynamic_ncols=True)
        try:
            while queue or self.running:
                while queue and self.idle:
                    self._submit(queue.popleft())
                if self.running:
                    ready, _ = ray.wait(list(self.running), num_returns=1)
                    self._collect(ready[0], queue)
        finally:
            self.bar.close()

    def _submit(self, task: ImageTask) -> None:
        try:
            data = read_input(task)
        except ImageLoadError as error:
            self._failed(task, str(error), {})
            return
        worker = self.idle.pop()
        self.running[worker.stylize.remote(task, data)] = (task, worker)
        self._show()

    def _collect(self, ref, queue: deque) -> None:
        task, worker = self.running.pop(ref)
        try:
            attempt = ray.get(ref)
        except ActorDiedError as error:   # its creation failed (restarts are unlimited): it never ran the image
            self.alive -= 1
            queue.appendleft(task)
            if not self.alive:
                raise UserError(f"no Ray worker could start: {_last_line(error)}. Every node needs the suite "
                                "installed in the same environment (README: Scale out on Ray).") from None
            return
        except RayError as error:
            self.idle.append(worker)
            self._failed(task, f"failed {self.max_retries + 1} time(s), the last: {_cause(error)}", {})
            return
        self.idle.append(worker)
        if attempt.setup_error:
            raise UserError(attempt.setup_error)
        if attempt.input_error:
            self._failed(task, attempt.input_error, attempt.where)
            return
        write_output(task.out_dir, attempt.output)
        self.reports[task.out_dir].written.append(task.image_id)
        self._log(task, "written", attempt.where)
        self._show(finished=1)

    def _failed(self, task: ImageTask, reason: str, where: dict) -> None:
        self.reports[task.out_dir].failed[str(task.source)] = reason
        self._log(task, "failed", where, reason)
        self.failed += 1
        self._show(finished=1)

    def _log(self, task: ImageTask, status: str, where: dict, reason: str | None = None) -> None:
        record = {"image": task.image_id, "status": status, **where}
        if reason:
            record["reason"] = reason
        worker = where.get("worker")
        if worker in self.last_pid and self.last_pid[worker] != where["pid"]:
            record["replaced_pid"] = self.last_pid[worker]   # Ray restarted this worker since its last image
        if worker is not None:
            self.last_pid[worker] = where["pid"]
        task.out_dir.mkdir(parents=True, exist_ok=True)
        with open(task.out_dir / WORKER_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(record, sort_keys=True) + "\n")

    def _show(self, finished: int = 0) -> None:
        self.bar.set_postfix(running=len(self.running), failed=self.failed, refresh=not finished)
        self.bar.update(finished)


def _cause(error: RayError) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, Exception) and not isinstance(cause, RayError):
        return failure_reason(cause)
    return f"its worker died ({type(error).__name__}: killed, out of memory or its node lost)"


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
