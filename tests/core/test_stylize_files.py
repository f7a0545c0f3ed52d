"""End-to-end stylisation on the tiny models: determinism, odd inputs, the CLI."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sms.style_matching  # noqa: F401  registers 'sms', RunConfig's default method (when run alone)
from sms.config import RunConfig
from sms.models import ModelSpec, load_stack
from sms.runner import stylize_files

ITERS = 4


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((96, 64)).save(path)
    return path


@pytest.fixture(scope="module")
def models():
    return load_stack(ModelSpec())


def _run(paths, out, models, seed=0):
    config = RunConfig(loop_overrides={"iters": ITERS, "resolution": 64, "seed": seed})
    return stylize_files(paths, config, out, progress=False, models=models)


def _without_timings(sidecar: Path) -> dict:
    data = json.loads(sidecar.read_text())
    data.pop("timings")
    return data


def test_same_seed_is_bit_identical_and_another_seed_differs(tmp_path, photo, models):
    # b runs on a stack whose fake LoRA has already trained on c: φ is re-initialised per image from the seed
    _run([photo], tmp_path / "a", load_stack(ModelSpec()))
    _run([photo], tmp_path / "c", models, seed=1)
    _run([photo], tmp_path / "b", models)
    png = lambda d: (tmp_path / d / "astronaut.png").read_bytes()  # noqa: E731
    assert png("a") == png("b")
    assert _without_timings(tmp_path / "a" / "astronaut.json") == _without_timings(tmp_path / "b" / "astronaut.json")
    assert png("a") != png("c")
    sidecar = json.loads((tmp_path / "a" / "astronaut.json").read_text())
    assert sidecar["unet_forwards"] == {"total": 7 * ITERS, "per_iter": 7.0}
    assert sidecar["nonfinite"]["total"] == 0 and len(sidecar["trace"]["t"]) == ITERS
    assert len(sidecar["models"]["style_lora"]) == 64 and "tiny" in sidecar["label"]
    assert Image.open(tmp_path / "a" / "astronaut.png").size == (96, 64)


def _write_odd_inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    files = {}
    good = folder / "good.png"
    Image.fromarray(pixels).save(good)
    files["truncated"] = folder / "truncated.png"
    files["truncated"].write_bytes(good.read_bytes()[:200])
    files["text"] = folder / "text.jpg"
    files["text"].write_text("not an image")
    files["rgba"] = folder / "rgba.png"
    Image.fromarray(np.dstack([pixels, np.full((40, 60), 128, np.uint8)])).save(files["rgba"])
    files["deep"] = folder / "deep.png"
    Image.fromarray((rng.integers(0, 65535, (40, 60))).astype(np.uint16)).save(files["deep"])
    files["grey"] = folder / "grey.jpg"
    Image.fromarray(pixels[..., 0]).save(files["grey"])
    files["rotated"] = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.fromarray(pixels).save(files["rotated"], exif=exif)
    files["tiny"] = folder / "tiny.png"
    Image.fromarray(pixels[:8, :8]).save(files["tiny"])
    return files


def test_odd_and_broken_images_in_one_call(tmp_path, models):
    files = _write_odd_inputs(tmp_path)
    report = _run(list(files.values()), tmp_path / "out", models)
    assert sorted(report.written) == ["deep", "grey", "rgba", "rotated"]
    assert set(report.failed) == {str(files["truncated"]), str(files["text"]), str(files["tiny"])}
    assert "not a readable image" in report.failed[str(files["text"])]
    assert "too small" in report.failed[str(files["tiny"])]
    assert Image.open(tmp_path / "out" / "rotated.png").size == (40, 60)  # EXIF orientation honoured
    assert Image.open(tmp_path / "out" / "deep.png").mode == "RGB"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [r["id"] for r in manifest["records"]] == ["deep", "grey", "rgba", "rotated"]


def test_finished_images_are_not_recomputed_and_shards_split_work(tmp_path, photo, models):
    second = tmp_path / "second.png"
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    first = _run([photo, second], tmp_path / "out", models)
    assert sorted(first.written) == ["astronaut", "second"]
    mtime = (tmp_path / "out" / "astronaut.png").stat().st_mtime_ns
    again = _run([photo, second], tmp_path / "out", models)
    assert again.written == [] and sorted(again.skipped_finished) == ["astronaut", "second"]
    assert (tmp_path / "out" / "astronaut.png").stat().st_mtime_ns == mtime
    config = RunConfig(loop_overrides={"iters": ITERS, "resolution": 64})
    shard0 = stylize_files([photo, second], config, tmp_path / "sharded", shard="0/2", progress=False, models=models)
    shard1 = stylize_files([photo, second], config, tmp_path / "sharded", shard="1/2", progress=False, models=models)
    assert shard0.written == ["astronaut"] and shard1.written == ["second"]


def test_cli_stylizes_a_bundled_photo_within_a_minute(tmp_path, photo):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workflow.cli", "stylize", str(photo), "--model", "tiny",
                           "--iters", "20", "--out", str(tmp_path / "cli"), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert elapsed < 60
    sidecar = json.loads((tmp_path / "cli" / "astronaut.json").read_text())
    assert sidecar["iterations"] == 20 and sidecar["config"]["method"] == "sms"
    assert Image.open(tmp_path / "cli" / "astronaut.png").size == (96, 64)


def test_cli_reports_a_missing_lora_clearly(tmp_path, photo):
    done = subprocess.run([sys.executable, "-m", "workflow.cli", "stylize", str(photo), "--model", "tiny",
                           "--style-lora", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=60)
    assert done.returncode == 2
    assert "Cannot find the style LoRA file" in done.stderr and "nope.safetensors" in done.stderr


def test_preview_strip_has_one_frame_per_interval(tmp_path, photo, models):
    config = RunConfig(loop_overrides={"iters": ITERS, "resolution": 64, "preview_every": 2})
    stylize_files([photo], config, tmp_path / "out", progress=False, models=models)
    strip = Image.open(tmp_path / "out" / "previews" / "astronaut.png")
    assert strip.size == (96 * ITERS // 2, 64)


def test_inputs_with_the_same_stem_are_refused_before_any_work(tmp_path, photo):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "astronaut.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="same output file"):
        stylize_files([photo, other / "astronaut.jpg"], RunConfig(), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
