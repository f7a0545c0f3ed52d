"""The `ray` executor on a local Ray cluster that declares fake GPUs (2 CPUs, 4 GPUs): the same files as `local`,
one GPU share per worker and no more images at once than shares, a worker killed mid-image replaced and its
image retried, a broken image failed once, finished images never recomputed, a clear message without Ray; a sampling method with an exemplar runs there as it runs locally."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ray = pytest.importorskip("ray")

from sms.config import RunConfig  # noqa: E402
from sms.runner import RunReport, plan_images  # noqa: E402
from workflow import stages  # noqa: E402
from workflow.by_hand import run_config  # noqa: E402
from workflow.cli import build_parser, main  # noqa: E402
from workflow.errors import UserError  # noqa: E402
from workflow.executor import INSTALL_RAY, ExecutorOptions, executor_options  # noqa: E402
from workflow.params import Params  # noqa: E402
from workflow.ray_executor import WORKER_LOG, run_on_ray, worker_count  # noqa: E402
from workflow.ray_worker import FAULT_ENV  # noqa: E402
from workflow.schema import validate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STYLIZE = ["--iters", "4", "--preview-every", "2", "--no-progress"]
PLACEMENT_FIELDS = ("timings", "peak_memory_bytes")   # where and how fast it ran, not what it computed


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, num_gpus=4, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, size in (("a", (64, 64)), ("b", (48, 64))):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return sorted(folder.iterdir())


def stylize(photos, out: Path, *flags: str) -> int:
    try:
        return main(["stylize", *map(str, photos), "--out", str(out), *STYLIZE, *flags])
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture(scope="module")
def local(tmp_path_factory, photos) -> Path:
    out = tmp_path_factory.mktemp("local")
    assert stylize(photos, out, "--executor", "local") == 1   # the broken image
    return out


@pytest.fixture(scope="module")
def on_ray(tmp_path_factory, photos, cluster) -> Path:
    out = tmp_path_factory.mktemp("ray")
    assert stylize(photos, out, "--executor", "ray", "--gpus-per-worker", "2") == 1
    return out


def cli_config() -> RunConfig:
    """The run `sms stylize … STYLIZE` makes, for calling the executor directly on the same results folders."""
    return run_config(build_parser().parse_args(["stylize", "x.png", "--out", "o", *STYLIZE]))


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / WORKER_LOG).read_text().splitlines()]


def sidecar(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {key: value for key, value in data.items() if key not in PLACEMENT_FIELDS}


def assert_same_results(out: Path, reference: Path, ids=("a", "b")) -> None:
    for image in ids:
        assert (out / f"{image}.png").read_bytes() == (reference / f"{image}.png").read_bytes()
        assert (out / "previews" / f"{image}.png").read_bytes() == (reference / "previews" / f"{image}.png").read_bytes()
        assert sidecar(out / f"{image}.json") == sidecar(reference / f"{image}.json")
    assert (out / "manifest.json").read_text() == (reference / "manifest.json").read_text()


def most_at_once(records: list[dict]) -> int:
    events = sorted([(r["started"], 1) for r in records] + [(r["ended"], -1) for r in records])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_ray_writes_the_same_files_as_local(on_ray, local):
    assert_same_results(on_ray, local)
    assert not (on_ray / "broken.json").exists()


def test_a_sampling_method_with_an_exemplar_runs_on_ray_as_it_runs_locally(tmp_path, photos, cluster):
    # no per-method code in the executor: StyleID (exemplar, inversion + sampling phases) writes what `local` writes
    flags = ["--method", "styleid", "--set", "steps=2", "--exemplar", str(photos[1]), "--no-progress"]
    outs = {kind: tmp_path / kind for kind in ("local", "ray")}
    for kind, out in outs.items():
        code = main(["stylize", *map(str, photos[:2]), "--out", str(out), *flags, "--executor", kind,
                     "--gpus-per-worker", "2"])
        assert code == 0
    for image in ("a", "b"):
        assert (outs["ray"] / f"{image}.png").read_bytes() == (outs["local"] / f"{image}.png").read_bytes()
        record = sidecar(outs["ray"] / f"{image}.json")
        assert record == sidecar(outs["local"] / f"{image}.json")
        assert record["family"] == "sampling" and record["unet_forwards"]["total"] == 3 * 2
    assert sorted(r["image"] for r in log(outs["ray"]) if r["status"] == "written") == ["a", "b"]
    before = {path.name: path.stat().st_mtime_ns for path in outs["ray"].glob("*.png")}
    assert main(["stylize", *map(str, photos[:2]), "--out", str(outs["ray"]), *flags]) == 0   # resumed locally
    assert {path.name: path.stat().st_mtime_ns for path in outs["ray"].glob("*.png")} == before


def test_each_worker_has_its_own_gpus_and_no_more_images_run_than_gpu_shares(on_ray):
    records = [r for r in log(on_ray) if "worker" in r]
    gpus = {r["worker"]: r["cuda_visible_devices"] for r in records}
    assert len(gpus) == 2, records   # 4 GPUs / 2 per worker; the first two images went to both
    first, second = (set(devices.split(",")) for devices in gpus.values())
    assert len(first) == len(second) == 2 and not first & second
    assert all(r["gpu_ids"] == r["cuda_visible_devices"].split(",") for r in records)
    assert most_at_once(records) <= 2


def test_a_broken_image_is_failed_once_and_not_retried(on_ray, photos):
    broken = [r for r in log(on_ray) if r["image"] == "broken"]
    assert len(broken) == 1 and broken[0]["status"] == "failed"
    assert broken[0]["reason"].startswith(f"{photos[-1]}: not a readable image")
    assert sorted(r["image"] for r in log(on_ray) if r["status"] == "written") == ["a", "b"]


def test_a_second_run_recomputes_nothing(on_ray, photos):
    before = {path.name: path.stat().st_mtime_ns for path in on_ray.rglob("*.png")}
    options = ExecutorOptions(kind="ray", gpus_per_worker=2)
    [report] = run_on_ray([plan_images(photos[:2], cli_config(), on_ray)], options, progress=False)
    assert report.written == [] and sorted(report.skipped_finished) == ["a", "b"]
    assert {path.name: path.stat().st_mtime_ns for path in on_ray.rglob("*.png")} == before


def test_a_worker_killed_mid_image_is_replaced_and_the_image_retried(tmp_path, monkeypatch, photos, local, cluster):
    marker = tmp_path / "fault-fired"
    monkeypatch.setenv(FAULT_ENV, f"b:{marker}")
    out = tmp_path / "out"
    assert stylize(photos[:2], out, "--executor", "ray", "--gpus-per-worker", "4", "--max-retries", "1") == 0
    assert marker.exists()   # the worker did die in the middle of b
    assert_same_results(out, local)
    records = log(out)
    assert [(r["image"], r["status"]) for r in records] == [("a", "written"), ("b", "written")]
    assert records[1]["replaced_pid"] == records[0]["pid"] != records[1]["pid"]
    assert most_at_once(records) == 1   # one share of 4 GPUs, although the cluster has 2 CPUs


def test_a_run_this_node_cannot_resolve_stops_the_stage_and_keeps_what_finished(tmp_path, monkeypatch, photos,
                                                                                 local, cluster):
    from sms.method import methods

    monkeypatch.setitem(methods._entries, "driver_only", methods.get("sms"))   # a plugin the workers were not given
    plans = [plan_images(photos[:2], cli_config(), tmp_path / "known"),
             plan_images(photos[:1], RunConfig(method="driver_only"), tmp_path / "unknown")]
    with pytest.raises(UserError, match="unknown method 'driver_only'.*--plugins"):
        run_on_ray(plans, ExecutorOptions(kind="ray", gpus_per_worker=4), progress=False)
    assert_same_results(tmp_path / "known", local)   # finished before the stop, manifest included
    assert not (tmp_path / "unknown").exists()


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch, photos, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert stylize(photos[:1], tmp_path / "out", "--executor", "ray") == 2
    error = capsys.readouterr().err
    assert INSTALL_RAY in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_flags_override_the_profiles_executor_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["demo"]["executor"] = {"kind": "ray", "gpus_per_worker": 0.5, "max_retries": 3}
    assert validate(raw, tmp_path) == []
    prepared = Path("data/prepared/content")
    prepared.mkdir(parents=True)
    (prepared / "manifest.json").write_text(json.dumps({"records": [{"path": "a.png"}]}))
    seen = {}

    def fake_jobs(jobs, options, **kwargs):
        seen.update(options=options, plugins=kwargs["plugins"])
        return [RunReport() for _ in jobs]
    import workflow.executor

    monkeypatch.setattr(stages, "require_valid", lambda *args, **kwargs: None)
    monkeypatch.setattr(workflow.executor, "stylize_jobs", fake_jobs)
    flags = {"kind": None, "address": None, "gpus_per_worker": None, "max_retries": 7, "workers": None}
    assert stages.stylize(Params(raw, tmp_path / "params.yaml"), "sms", executor=flags, plugins=["p"]) == 0
    assert seen == {"options": ExecutorOptions(kind="ray", gpus_per_worker=0.5, max_retries=7), "plugins": ["p"]}


def test_bad_settings_are_one_paragraph():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["demo"]["executor"] = {"kind": "slurm", "gpu_per_worker": 1}
    problems = validate(raw, ROOT)
    assert any("executor.kind: 'slurm' is not one of local, ray" in p for p in problems)
    assert any("executor.gpu_per_worker: unknown key. Did you mean 'gpus_per_worker'?" in p for p in problems)
    with pytest.raises(UserError, match="gpus_per_worker .* ≥ 0, got -1.*max_retries"):
        executor_options(None, gpus_per_worker=-1, max_retries=-2)
    with pytest.raises(UserError, match="0 GPU.*--gpus-per-worker"):
        worker_count({"CPU": 8}, ExecutorOptions(kind="ray"), 10)
    assert worker_count({"CPU": 8, "GPU": 2}, ExecutorOptions(kind="ray", gpus_per_worker=0.5), 10) == 4
    assert worker_count({"CPU": 8, "GPU": 8}, ExecutorOptions(kind="ray", workers=3), 10) == 3
    assert worker_count({"CPU": 8, "GPU": 8}, ExecutorOptions(kind="ray"), 2) == 2
