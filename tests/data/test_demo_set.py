"""The offline demo sets: the 8 shipped photos, hashed correctly, deterministically; the style sets."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.demo import DEMO_PHOTOS, PAINTED_COLOURS, main, materialise_demo_content, materialise_demo_style, shipped_path
from data.files import read_json

EXPECTED_SIZES = {  # (width, height) of the images as shipped
    "astronaut": (512, 512), "coffee": (600, 400), "chelsea": (451, 300), "rocket": (640, 427),
    "hubble_deep_field": (1000, 872), "retina": (1411, 1411), "immunohistochemistry": (512, 512),
    "grace_hopper": (512, 600),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, materialise_demo_content(out)


def test_demo_content_materialises_the_eight_photos_with_their_sizes(demo):
    out, manifest = demo
    assert manifest["count"] == 8
    assert {r["id"]: (r["width"], r["height"]) for r in manifest["records"]} == EXPECTED_SIZES
    for record in manifest["records"]:
        with Image.open(out / record["file"]) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            assert image.size == EXPECTED_SIZES[record["id"]]


def test_demo_manifest_sha256_match_the_written_and_shipped_files(demo):
    out, manifest = demo
    sources = {r["id"]: r["source"] for r in manifest["records"]}
    assert sources["astronaut"] == "scikit-image:skimage.data.astronaut"
    assert sources["grace_hopper"].startswith("matplotlib:")
    for record in manifest["records"]:
        assert record["sha256"] == sha256(out / record["file"])
        assert record["licence"]
    for item, record in zip(DEMO_PHOTOS, manifest["records"], strict=True):
        assert record["source_sha256"] == sha256(shipped_path(item))
    assert (out / "manifest.json").is_file()


def test_demo_content_is_deterministic_and_cli_writes_textures(demo, tmp_path, capsys):
    _, first = demo
    assert main(["--out", str(tmp_path / "content"), "--style-out", str(tmp_path / "style"),
                 "--style", "textures"]) == 0
    assert "demo style (demo-textures): 3 images" in capsys.readouterr().out
    second = read_json(tmp_path / "content" / "manifest.json")
    assert [r["sha256"] for r in second["records"]] == [r["sha256"] for r in first["records"]]
    assert second["digest"] == first["digest"]
    textures = read_json(tmp_path / "style" / "manifest.json")
    assert [r["id"] for r in textures["records"]] == ["brick", "grass", "gravel"]
    brick = np.asarray(Image.open(tmp_path / "style" / "brick.png"))
    assert brick.shape == (512, 512, 3) and (brick[..., 0] == brick[..., 2]).all()
    assert textures["records"][0]["sha256"] == sha256(tmp_path / "style" / "brick.png")


def test_painted_style_set_is_flat_colour_versions_of_the_photos(tmp_path):
    manifest = materialise_demo_style(tmp_path, "painted")
    assert manifest["name"] == "demo-painted" and manifest["count"] == 8
    for record in manifest["records"]:
        pixels = np.asarray(Image.open(tmp_path / record["file"])).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) <= PAINTED_COLOURS
        assert max(record["width"], record["height"]) == min(512, max(EXPECTED_SIZES[record["id"]]))
        assert record["sha256"] == sha256(tmp_path / record["file"])
