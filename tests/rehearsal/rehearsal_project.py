"""A throw-away copy of the suite's project (code, dvc.yaml, params.yaml) in which `dvc` and `sms` run as a
user would run them, with HOME, the cache and the hub redirected so that nothing outside it is touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE = ("sms", "baselines", "data", "eval", "analysis", "workflow")


def make_project(where: Path, params: dict) -> Path:
    """Copy the code DVC hashes as dependencies, the pipeline and ``params``; initialise DVC (no git)."""
    where.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "staged", "prepared", "*.pyc")
    for package in CODE:
        shutil.copytree(ROOT / package, where / package, ignore=ignore, dirs_exist_ok=True)
    shutil.copy(ROOT / "dvc.yaml", where / "dvc.yaml")
    (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    run(["dvc", "init", "--no-scm", "-q"], where, env=environment(where))
    (where / ".dvc" / "config").write_text("[core]\n    no_scm = True\n    analytics = false\n")
    return where


def environment(project: Path, home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env.update(HF_HUB_OFFLINE="1", DVC_NO_ANALYTICS="1", SMS_CACHE=str(project / ".cache-sms"),
               PATH=bin_dir + os.pathsep + env.get("PATH", ""), PYTHONPATH=str(ROOT))
    if home is not None:
        env["HOME"] = str(home)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}\n--- stdout\n{done.stdout[-6000:]}\n"
                             f"--- stderr\n{done.stderr[-6000:]}")
    return done


def stages_run(output: str) -> list[str]:
    """The stages `dvc repro` actually ran (not those it found cached or unchanged)."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
