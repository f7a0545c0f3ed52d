"""benchmarks/gpu/run.sh only runs on rare GPU loans: rehearse it here on the CPU so it cannot rot."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu" / "run.sh"


def _run(tmp_path, *stages, **env):
    environment = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), **env}
    return subprocess.run(["bash", str(SCRIPT), *stages], capture_output=True, text=True, env=environment,
                          cwd=ROOT, timeout=300)


@pytest.mark.timeout(300)
def test_core_stage_writes_its_table_on_the_cpu(tmp_path):
    result = _run(tmp_path, "core", DEVICE="cpu", MODEL="tiny", ITERS="1", WARMUP="0", METHODS="sms",
                  EXTRA_ARGS="--variants batched")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = (tmp_path / "core.md").read_text()
    assert "| sms | reference |" in table and "| sms | batched |" in table
    assert "exit 0" in (tmp_path / "core.log").read_text()
    assert "torch" in (tmp_path / "env.txt").read_text()


def test_unknown_stage_is_refused_before_any_work(tmp_path):
    result = _run(tmp_path, "nonsense")
    assert result.returncode == 2 and "unknown stage" in result.stderr
    assert not any(tmp_path.iterdir())
