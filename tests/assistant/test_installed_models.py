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


def test_front_end_takes_wake_and_vad_models_from_their_slots(tmp_path: Path) -> None:
    import json
    import shutil

    import pymicro_wakeword

    from device.appliance import build_frontend
    from device.bench.speech import VOICES, concat, silence, synthesize
    from hal.audio import float_to_pcm16, frames_from_pcm
    from models.vad import builtin_model_path

    builtin = Path(pymicro_wakeword.__file__).parent / "models"
    wake_src = tmp_path / "wake-src"
    wake_src.mkdir()
    # An update that ships a new model under the configured name: "okay_nabu" now hears "alexa".
    shutil.copy(builtin / "alexa.tflite", wake_src / "alexa.tflite")
    (wake_src / "okay_nabu.json").write_text((builtin / "alexa.json").read_text())
    write_manifest(wake_src, name="wake", kind="wake", version="3.0.0", runtime="tflite")
    vad_src = tmp_path / "vad-src"
    vad_src.mkdir()
    shutil.copy(builtin_model_path(), vad_src / "silero_vad.onnx")
    write_manifest(vad_src, name="silero", kind="vad", version="6.2.0")
    state_dir = tmp_path / "state"
    store = SlotStore(state_dir / "ota")
    store.provision("wake", wake_src)
    store.provision("vad", vad_src)

    frontend = build_frontend(_settings(state_dir))
    assert frontend.vad.path == store.slot_dir("vad", "a") / "silero_vad.onnx"  # type: ignore[attr-defined]
    audio = concat(silence(0.5), synthesize("alexa", VOICES[0]), silence(1.0))
    detections = [e for c in frames_from_pcm(float_to_pcm16(audio)) for e in frontend.process(c) if type(e).__name__ == "Detection"]
    assert len(detections) == 1
    assert json.loads((store.slot_dir("wake", "a") / "okay_nabu.json").read_text())["model"] == "alexa.tflite"
    frontend.close()
    # Without the update the built-in okay_nabu stays silent on "alexa": the slot's model did it.
    plain = build_frontend(_settings(tmp_path / "no-ota"))
    assert not [e for c in frames_from_pcm(float_to_pcm16(audio)) for e in plain.process(c) if type(e).__name__ == "Detection"]
    plain.close()


async def test_a_switched_model_makes_the_service_reload(tmp_path: Path) -> None:
    import asyncio

    import device.appliance as appliance
    state_dir = tmp_path / "state"
    store = SlotStore(state_dir / "ota")
    store.provision("asr", _bundle(tmp_path, "1.0.0"))
    settings = _settings(state_dir)
    loaded = appliance.active_models(settings)
    assert loaded == {"asr": ("a", "1.0.0")}
    called = asyncio.Event()
    watcher = asyncio.create_task(appliance.watch_slots(settings, loaded, called.set, poll_s=0.01))
    await asyncio.sleep(0.05)
    assert not called.is_set()  # nothing changed: keep running
    new = _bundle(tmp_path, "1.1.0")
    slot_b = store.slot_dir("asr", "b")
    slot_b.mkdir(parents=True)
    for f in new.iterdir():
        (slot_b / f.name).write_bytes(f.read_bytes())
    store.switch("asr", "b", "1.1.0", attempts=2)
    await asyncio.wait_for(called.wait(), 5)
    await watcher
