"""User-supplied style folders: clear errors when missing, per-file sha256 and a folder digest when present."""
import hashlib

import pytest
from PIL import Image

from data.files import DataError, read_json
from data.style_set import main, stage_style_set


def test_a_missing_style_folder_says_what_to_supply_and_where(tmp_path, capsys):
    missing = tmp_path / "styles" / "shinkai"
    assert main(["--name", "shinkai", "--src", str(missing), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"error: Style set 'shinkai': the folder {missing} does not exist. ")
    assert "5,958 Makoto Shinkai film frames of Scenimefy" in message
    assert "not distributed with this suite" in message
    assert "put it at that path or pass another with --src" in message
    assert "\n" not in message.strip()  # one paragraph
    assert not (tmp_path / "out").exists()


def test_an_empty_style_folder_is_refused(tmp_path):
    (tmp_path / "ghibli").mkdir()
    (tmp_path / "ghibli" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="Style set 'ghibli': the folder .* contains no image files. It should hold "
                                        "the 714 Studio Ghibli frames"):
        stage_style_set("ghibli", tmp_path / "ghibli", tmp_path / "out")


def test_a_style_folder_is_recorded_with_sha256_and_digest(tmp_path):
    src = tmp_path / "mine"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(src / "a.png")
    Image.new("RGB", (8, 8), "blue").save(src / "sub" / "b.jpg")
    (src / ".hidden.png").write_bytes(b"ignored")
    (src / "captions.json").write_text('{"a.png": "red square"}')
    manifest = stage_style_set("mine", src, tmp_path / "out")
    assert [(r["id"], r["file"]) for r in manifest["records"]] == [("a", "a.png"), ("sub__b", "sub/b.jpg")]
    for record in manifest["records"]:
        assert record["sha256"] == hashlib.sha256((src / record["file"]).read_bytes()).hexdigest()
    assert manifest["captions"]["file"] == "captions.json"
    assert read_json(tmp_path / "out" / "manifest.json") == manifest
    Image.new("RGB", (8, 8), "green").save(src / "a.png")
    assert stage_style_set("mine", src, tmp_path / "out")["digest"] != manifest["digest"]
