"""Bundled SD-1.5 configs, so that single-file checkpoints and meta-device shape checks work offline."""
from __future__ import annotations

import json
from pathlib import Path

SD15_CONFIG_DIR = Path(__file__).parent / "sd15"


def sd15_component_config(component: str) -> dict:
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return json.loads((SD15_CONFIG_DIR / component / name).read_text())


def sd15_scheduler_config() -> dict:
    return sd15_component_config("scheduler")
