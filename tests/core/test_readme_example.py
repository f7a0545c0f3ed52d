"""The README's worked example of adding a method works as printed."""
import json
import re
from pathlib import Path

from PIL import Image

from workflow.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_method_example_registers_and_runs(tmp_path, capsys):
    match = re.search(r"Create one file, `baselines/(\w+)\.py`.*?```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its worked example"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{match[1]}.py").write_text(match[2])
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (120, 80, 40)).save(image)
    assert main(["--plugins", str(plugins), "methods"]) == 0
    assert "noisy_sds" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["--plugins", str(plugins), "stylize", str(image), "--model", "tiny", "--method", "noisy_sds",
                 "--iters", "2", "--out", str(out), "--no-progress"]) == 0
    sidecar = json.loads((out / "photo.json").read_text())
    assert sidecar["config"]["method"] == "noisy_sds" and sidecar["unet_forwards"]["per_iter"] == 2.0
