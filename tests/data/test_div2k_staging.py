"""DIV2K staging against a small fake archive: checksum, count and names checked; no download by default."""
import hashlib
import io
import urllib.request
import zipfile
from dataclasses import replace

import pytest
from PIL import Image

from data.div2k import SPLITS, main, stage_div2k
from data.files import DataError, read_json

NAMES = ["0801.png", "0802.png", "0803.png"]


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_zip(tmp_path):
    path = tmp_path / "DIV2K_valid_HR.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DIV2K_valid_HR/", "")
        for index, name in enumerate(NAMES):
            archive.writestr(f"DIV2K_valid_HR/{name}", png((index * 80, 10, 200)))
        archive.writestr("__MACOSX/DIV2K_valid_HR/._0801.png", b"resource fork")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def fake_split(checksum: str):
    return replace(SPLITS["valid"], sha256=checksum, count=3)


def test_staging_a_fake_zip_with_its_checksum_extracts_and_records_it(fake_zip, tmp_path, capsys):
    zip_path, checksum = fake_zip
    out = tmp_path / "staged"
    argv = ["--out", str(out), "--zip", str(zip_path), "--expected-sha256", checksum, "--expected-count", "3"]
    assert main(argv) == 0
    assert "div2k-valid: 3 images" in capsys.readouterr().out
    manifest = read_json(out / "manifest.json")
    assert [r["file"] for r in manifest["records"]] == NAMES
    assert manifest["root"] == "." and manifest["archive"]["sha256"] == checksum
    for record in manifest["records"]:
        assert record["sha256"] == hashlib.sha256((out / record["file"]).read_bytes()).hexdigest()
        assert (record["width"], record["height"]) == (6, 4)
    assert sorted(p.name for p in out.iterdir()) == NAMES + ["manifest.json"]


def test_a_wrong_checksum_is_refused_naming_the_file_expected_and_got(fake_zip, tmp_path, capsys):
    zip_path, checksum = fake_zip
    out = tmp_path / "staged"
    wrong = "ab" * 32
    assert main(["--out", str(out), "--zip", str(zip_path), "--expected-sha256", wrong, "--expected-count", "3"]) == 2
    message = capsys.readouterr().err
    assert f"checksum mismatch for {zip_path}: expected sha256 {wrong}, got {checksum}." in message
    assert not out.exists()


def test_a_wrong_image_count_is_refused_with_missing_names(fake_zip, tmp_path):
    zip_path, checksum = fake_zip
    split = replace(fake_split(checksum), count=4)
    with pytest.raises(DataError, match=r"expected the 4 DIV2K valid images 0801.png \.\.\. 0804.png, found 3 "
                                        r"image file\(s\); missing: 0804.png; unexpected: none"):
        stage_div2k(tmp_path / "staged", split, zip_path=zip_path)


def test_without_a_local_copy_nothing_downloads_unless_allowed(fake_zip, tmp_path, monkeypatch):
    zip_path, checksum = fake_zip
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: calls.append(a) or io.BytesIO(zip_path.read_bytes()))
    out = tmp_path / "staged"
    with pytest.raises(DataError, match="downloading is off.*--allow-download"):
        stage_div2k(out, fake_split(checksum), download_dir=tmp_path / "dl")
    assert calls == []
    manifest = stage_div2k(out, fake_split(checksum), download_dir=tmp_path / "dl", allow_download=True)
    assert calls == [(SPLITS["valid"].url,)] and manifest["count"] == 3
    assert (tmp_path / "dl" / "DIV2K_valid_HR.zip").read_bytes() == zip_path.read_bytes()
    again = stage_div2k(tmp_path / "staged2", fake_split(checksum), download_dir=tmp_path / "dl")
    assert len(calls) == 1 and again["digest"] == manifest["digest"]  # the cached zip is reused


def test_a_download_with_the_wrong_checksum_leaves_no_file(fake_zip, tmp_path, monkeypatch):
    zip_path, _ = fake_zip
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(zip_path.read_bytes()))
    with pytest.raises(DataError, match="checksum mismatch"):
        stage_div2k(tmp_path / "staged", fake_split("00" * 32), download_dir=tmp_path / "dl", allow_download=True)
    assert not (tmp_path / "dl" / "DIV2K_valid_HR.zip").exists()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == []


def test_an_extracted_folder_is_used_in_place(fake_zip, tmp_path):
    zip_path, checksum = fake_zip
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "unzipped")
    out = tmp_path / "staged"
    manifest = stage_div2k(out, fake_split(checksum), folder=tmp_path / "unzipped")
    assert manifest["count"] == 3 and manifest["archive"] is None
    assert (out / manifest["root"]).resolve() == (tmp_path / "unzipped" / "DIV2K_valid_HR").resolve()
    (tmp_path / "unzipped" / "DIV2K_valid_HR" / "0803.png").unlink()
    with pytest.raises(DataError, match="missing: 0803.png"):
        stage_div2k(out, fake_split(checksum), folder=tmp_path / "unzipped")
