"""A method added as one .py file in a plugin folder shows up in the registry and in the CLI."""
from __future__ import annotations

import json

import pytest

TOY = '''
from dataclasses import dataclass, field

from sms.method import Gradient, ScoreDistillation, methods


@dataclass
class ToyConfig:
    t_sampler: str = "ans"
    t_sampler_options: dict = field(default_factory=dict)


@methods.register("toy")
class Toy(ScoreDistillation):
    """Pulls z back to the source: g = z − z_src, no UNet."""

    Config = ToyConfig
    profiles = {"harmonised": {"method": {}, "loop": {"identity": "none"}}}

    def gradient(self, state):
        draw = self.draw_timestep(state)
        return Gradient(state.z - state.z_src, draw.t, draw.t_prev, forwards=0)
'''


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "toy_method.py").write_text(TOY)
    return folder


def test_plugin_folder_registers_the_method(plugin_dir):
    from sms.method import methods
    from workflow.discovery import load_plugin_folder

    load_plugin_folder(plugin_dir)
    assert "toy" in methods.names()
    load_plugin_folder(plugin_dir)     # idempotent: the same file is not imported twice


def test_cli_lists_and_runs_the_plugin(plugin_dir, tmp_path, content_image, capsys):
    from workflow.cli import main

    assert main(["--plugins", str(plugin_dir), "methods"]) == 0
    listing = capsys.readouterr().out
    assert "toy" in listing and "sds" in listing and "dds" in listing
    image = tmp_path / "content.png"
    content_image.save(image)
    out = tmp_path / "out"
    assert main(["--plugins", str(plugin_dir), "stylize", str(image), "--model", "tiny", "--method", "toy",
                 "--iters", "2", "--out", str(out), "--no-progress"]) == 0
    assert (out / "content.png").is_file()
    sidecar = json.loads((out / "content.json").read_text())
    assert sidecar["config"]["method"] == "toy" and sidecar["unet_forwards"]["total"] == 0
