"""Test-wide settings: never touch the network, keep generated files in a per-session folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: threading overhead dominates on a 2-core machine


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["SMS_CACHE"] = str(tmp_path_factory.mktemp("sms-cache"))
    yield


@pytest.fixture(scope="session")
def tiny_stack():
    """One tiny model stack for read-only tests (tests that train must build their own)."""
    from sms.models import ModelSpec, load_stack

    return load_stack(ModelSpec())
