"""prepare: centre crop + resize, EXIF rotation, mode normalisation, captions, skipping broken files."""
import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from data.files import read_json
from data.prepare import main, prepare
from data.style_set import stage_style_set

SIZE = 16
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def wide_three_bands() -> Image.Image:
    """120x60: red | green (the centre 60x60 square) | blue."""
    pixels = np.zeros((60, 120, 3), np.uint8)
    pixels[:, :30], pixels[:, 30:90], pixels[:, 90:] = RED, GREEN, BLUE
    return Image.fromarray(pixels)


def save_rotated_jpeg(path) -> None:
    """Stored 40 wide x 20 high, left half red, right half blue; EXIF orientation 6 = show rotated 90° CW."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20], pixels[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif.tobytes())


def truncated_png() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()[:2000]


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    wide_three_bands().save(src / "wide.png")
    save_rotated_jpeg(src / "rotated.jpg")
    Image.new("RGBA", (30, 30), (10, 20, 30, 0)).save(src / "clear.png")
    Image.fromarray(np.full((24, 24), 65535, np.uint16)).save(src / "grey16.png")
    (src / "broken.png").write_bytes(truncated_png())
    (src / "notes.jpg").write_text("this is a text file, not a JPEG")
    (src / "captions.json").write_text('{"wide.png": "three bands", "rotated": "red over blue"}')
    return src


def pixels(out, record) -> np.ndarray:
    return np.asarray(Image.open(out / record["path"]))


def test_prepare_crops_resizes_normalises_and_skips(source, tmp_path):
    out = tmp_path / "out"
    manifest = prepare(source, out, SIZE)
    records = {r["id"]: r for r in manifest["records"]}
    assert sorted(records) == ["clear", "grey16", "rotated", "wide"]
    for record in records.values():
        image = Image.open(out / record["path"])
        assert image.size == (SIZE, SIZE) and image.mode == "RGB"
        assert (record["width"], record["height"]) == (SIZE, SIZE)
        assert record["sha256"] == hashlib.sha256((out / record["path"]).read_bytes()).hexdigest()
    assert (pixels(out, records["wide"]) == GREEN).all()  # only the centre square survives the crop
    assert (records["wide"]["source_width"], records["wide"]["source_height"]) == (120, 60)
    assert (pixels(out, records["clear"]) == WHITE).all()  # transparent -> composited on white
    assert (pixels(out, records["grey16"]) == WHITE).all()  # 16-bit full scale -> 255
    assert records["wide"]["caption"] == "three bands"
    assert records["rotated"]["caption"] == "red over blue"
    assert records["clear"]["caption"] == ""

    skipped = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert skipped == {"broken.png": "OSError: image file is truncated",
                       "notes.jpg": "UnidentifiedImageError: cannot identify image file 'notes.jpg'"}
    assert read_json(out / "manifest.json") == manifest
    assert sorted(p.name for p in out.iterdir()) == ["clear.png", "grey16.png", "manifest.json", "rotated.png",
                                                       "wide.png"]


def test_prepare_honours_exif_orientation(source, tmp_path):
    record = next(r for r in prepare(source, tmp_path / "out", SIZE)["records"] if r["id"] == "rotated")
    assert (record["source_width"], record["source_height"]) == (20, 40)  # upright: portrait
    image = pixels(tmp_path / "out", record).astype(int)
    top, bottom = image[: SIZE // 2 - 2], image[SIZE // 2 + 2:]
    assert (top[..., 0] > 200).all() and (top[..., 2] < 60).all()  # red on top
    assert (bottom[..., 2] > 200).all() and (bottom[..., 0] < 60).all()  # blue below


def test_prepare_from_a_staged_manifest_skips_files_changed_since_staging(source, tmp_path, capsys):
    staged = tmp_path / "staged"
    staged_manifest = stage_style_set("mine", source, staged)
    assert sorted(s["file"] for s in staged_manifest["skipped"]) == ["broken.png", "notes.jpg"]  # undecodable
    Image.new("RGB", (8, 8), "black").save(source / "clear.png")
    out = tmp_path / "out"
    assert main([str(staged), "--out", str(out), "--size", "8", "--limit", "4"]) == 0
    manifest = read_json(out / "manifest.json")
    assert manifest["name"] == "mine" and manifest["size"] == 8
    assert [r["id"] for r in manifest["records"]] == ["grey16", "rotated", "wide"]  # staged: clear, grey16, …
    skipped = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert sorted(skipped) == ["clear.png"]
    assert skipped["clear.png"].startswith("sha256 changed since staging (expected ")
    assert "skipped clear.png: sha256 changed" in capsys.readouterr().err


def test_rerunning_prepare_removes_outputs_it_no_longer_lists(source, tmp_path):
    out = tmp_path / "out"
    prepare(source, out, SIZE)
    (source / "wide.png").unlink()
    manifest = prepare(source, out, SIZE, workers=2)
    assert "wide" not in {r["id"] for r in manifest["records"]}
    assert not (out / "wide.png").exists()
