"""A stylise run killed mid-way resumes: finished images are kept untouched, the rest are completed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _photos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _command(paths, out):
    return [sys.executable, "-m", "workflow.cli", "stylize", *map(str, paths), "--model", "tiny", "--iters", "40",
            "--out", str(out), "--no-progress"]


def test_killed_run_resumes_without_recomputing(tmp_path):
    paths = _photos(tmp_path, 3)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_command(paths, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "photo0.json").exists():
        assert process.poll() is None, "the run ended before the first image finished"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_first = (out / "photo0.png").stat().st_mtime_ns
    assert not (out / "photo2.json").exists()
    done = subprocess.run(_command(paths, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already finished" in done.stdout
    assert (out / "photo0.png").stat().st_mtime_ns == finished_first
    for i in range(3):
        sidecar = json.loads((out / f"photo{i}.json").read_text())
        assert sidecar["iterations"] == 40
        assert Image.open(out / f"photo{i}.png").size == (64, 64)
    records = json.loads((out / "manifest.json").read_text())["records"]
    assert [r["id"] for r in records] == ["photo0", "photo1", "photo2"]
