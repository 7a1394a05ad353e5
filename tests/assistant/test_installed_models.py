"""The service loads models from the OTA slots when OTA installed them, and falls back safely."""

from __future__ import annotations

from pathlib import Path

from device.appliance import installed_bundle
from device.settings import Settings, replace_path
from models.manifest import write_manifest
from ota.slots import SlotStore


def _settings(state_dir: Path) -> Settings:
    return replace_path(Settings(), "device.state_dir", str(state_dir))


def _bundle(tmp_path: Path, version: str) -> Path:
    src = tmp_path / f"src-{version}"
    src.mkdir()
    (src / "encoder.onnx").write_bytes(b"weights" * 100)
    write_manifest(src, name="whisper", kind="asr", version=version)
    return src


def test_nothing_installed_means_the_built_in_model(tmp_path: Path) -> None:
    assert installed_bundle(_settings(tmp_path / "state"), "asr") is None


def test_installed_bundle_is_used_and_a_trial_attempt_is_spent(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = SlotStore(state_dir / "ota")
    store.provision("asr", _bundle(tmp_path, "1.0.0"))
    path = installed_bundle(_settings(state_dir), "asr")
    assert path == state_dir / "ota" / "slots" / "asr" / "a"
    # A freshly switched model on trial: each start spends an attempt, then it is rolled back.
    new = _bundle(tmp_path, "1.1.0")
    slot_b = store.slot_dir("asr", "b")
    slot_b.mkdir(parents=True)
    for f in new.iterdir():
        (slot_b / f.name).write_bytes(f.read_bytes())
    store.switch("asr", "b", "1.1.0", attempts=1)
    assert installed_bundle(_settings(state_dir), "asr") == slot_b
    assert store.load().kind("asr").trial is not None
    assert installed_bundle(_settings(state_dir), "asr") == path  # attempts ran out: back on slot a
    assert store.load().kind("asr").version == "1.0.0"


def test_corrupt_installed_bundle_falls_back(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = SlotStore(state_dir / "ota")
    store.provision("asr", _bundle(tmp_path, "1.0.0"))
    (store.slot_dir("asr", "a") / "encoder.onnx").write_bytes(b"tampered" * 100)
    assert installed_bundle(_settings(state_dir), "asr") is None
