"""Model bundle manifests: written complete, and any missing, short or altered file is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.errors import ModelError
from models.manifest import Golden, read_manifest, verify_bundle, write_manifest


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "model.onnx").write_bytes(b"\x08\x01" * 500)
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "a.wav").write_bytes(b"RIFF" + bytes(100))
    write_manifest(tmp_path, name="test", kind="asr", version="1.2.0", golden=(Golden("golden/a.wav", "hello"),))
    return tmp_path


def test_round_trip(bundle: Path) -> None:
    m = verify_bundle(bundle)
    assert m.name == "test" and m.kind == "asr" and m.version == "1.2.0"
    assert {f.path for f in m.files} == {"model.onnx", "golden/a.wav"}
    assert m.file("model.onnx").size == 1000
    assert m.golden == (Golden("golden/a.wav", "hello"),)


def test_truncated_file_is_named(bundle: Path) -> None:
    (bundle / "model.onnx").write_bytes(b"\x08\x01" * 100)
    with pytest.raises(ModelError, match="model.onnx is 200 bytes") as info:
        verify_bundle(bundle)
    assert info.value.code == "model-corrupt"


def test_altered_file_is_named(bundle: Path) -> None:
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[10] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="model.onnx does not match its sha256"):
        verify_bundle(bundle)


def test_missing_file_is_named(bundle: Path) -> None:
    (bundle / "golden" / "a.wav").unlink()
    with pytest.raises(ModelError, match="a.wav is missing"):
        verify_bundle(bundle)


def test_manifest_cannot_point_outside_the_bundle(bundle: Path) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    data["files"][0]["path"] = "../../etc/passwd"
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="escapes the bundle"):
        read_manifest(bundle)


@pytest.mark.parametrize("mutate", [lambda d: d.pop("kind"), lambda d: d.update(kind="firmware"), lambda d: d.update(format=9)])
def test_bad_manifest_fields(bundle: Path, mutate: object) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    mutate(data)  # type: ignore[operator]
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError) as info:
        read_manifest(bundle)
    assert info.value.code == "model-bad-manifest"


def test_not_json(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(ModelError, match="not readable JSON"):
        read_manifest(tmp_path)
