"""`voxhome doctor` against a real mosquitto, a verified bundle and a corrupt/missing one."""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from device.cloud.fake_server import FakeRealtimeServer
from device.settings import Secret, Settings, WakeWordSettings, replace_path
from device.sim.broker import Mosquitto
from device.system.doctor import (
    check_audio,
    check_broker,
    check_clock,
    check_cloud,
    check_disk,
    check_frontend,
    check_models,
    check_speaker,
)
from models.manifest import write_manifest

REPO = Path(__file__).resolve().parents[2]


def _bundle(root: Path) -> Path:
    bundle = root / "ota/slots/asr/a"
    bundle.mkdir(parents=True)
    (bundle / "model.onnx").write_bytes(b"\x08\x01weights" * 100)
    write_manifest(bundle, name="asr-test", kind="asr", version="1.0.0")
    return bundle


def _config(tmp_path: Path, broker: Mosquitto, state: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[device]\nid = "doc"\nstate_dir = "{state}"\n[audio.mic]\nbackend = "null"\n[audio.speaker]\nbackend = "null"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n[cloud]\nenabled = false\n'
    )
    return config


def _doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device", "--config", str(config), "doctor", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_doctor_all_ok_then_corrupt_bundle(tmp_path: Path, mosquitto: Mosquitto) -> None:
    state = tmp_path / "state"
    bundle = _bundle(state)
    config = _config(tmp_path, mosquitto, state)
    done = _doctor(config)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert done.returncode == 0, done.stdout + done.stderr
    assert checks["model asr-test"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"
    assert checks["cloud"]["status"] == "skip" and checks["audio"]["status"] == "skip"
    assert checks["front end"]["status"] == "ok" and "okay_nabu" in checks["front end"]["detail"]

    (bundle / "model.onnx").write_bytes(b"tampered")
    done = _doctor(config)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert done.returncode == 1
    assert checks["model asr/a"]["status"] == "fail" and checks["model asr/a"]["fix"]


def test_broker_down_and_missing_models(tmp_path: Path, mosquitto: Mosquitto) -> None:
    settings = replace_path(
        replace_path(Settings(), "mqtt.host", mosquitto.host), "mqtt.port", mosquitto.port
    )
    assert check_broker(settings).status == "ok"
    mosquitto.stop()
    down = check_broker(settings, timeout_s=2)
    assert down.status == "fail" and down.fix
    assert [c.status for c in check_models([tmp_path / "nothing"])] == ["fail"]
    assert check_models([])[0].status == "fail"


def test_clock_and_disk(tmp_path: Path) -> None:
    assert check_clock(datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)).status == "fail"
    assert check_clock(datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)).status == "ok"
    assert check_disk(tmp_path / "not/yet", need_mb=1).status == "ok"
    assert check_disk(tmp_path, need_mb=1 << 40).status == "fail"


def test_audio_devices_through_real_alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "mic.raw"
    raw.write_bytes(bytes(32000))
    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text(
        'pcm.voxmic {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
        f'  infile "{raw}"\n  format "raw"\n}}\n'
        "pcm.voxspk {\n  type null\n}\n"
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(asoundrc))
    good = replace_path(replace_path(Settings(), "audio.mic.device", "voxmic"), "audio.speaker.device", "voxspk")
    assert check_audio(good).status == "ok"
    assert check_speaker(good).status == "ok"
    bad = replace_path(replace_path(Settings(), "audio.mic.device", "nosuch"), "audio.speaker.device", "nosuch")
    mic, spk = check_audio(bad), check_speaker(bad)
    assert mic.status == "fail" and "nosuch" in mic.detail and mic.fix
    assert spk.status == "fail" and spk.fix


def test_cloud_handshake_accepts_and_rejects_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real WebSocket server on 127.0.0.1 that checks the key, as the cloud does."""
    loop = asyncio.new_event_loop()
    server = FakeRealtimeServer(api_key="right-key")
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        settings = replace_path(Settings(), "cloud.url", server.url)
        settings = replace_path(settings, "cloud.api_key", Secret(env="VOXHOME_TEST_KEY"))
        monkeypatch.setenv("VOXHOME_TEST_KEY", "right-key")
        assert check_cloud(settings, timeout_s=5).status == "ok"
        monkeypatch.setenv("VOXHOME_TEST_KEY", "wrong-key")
        rejected = check_cloud(settings, timeout_s=5)
        assert rejected.status == "fail" and "cloud-auth" in rejected.detail and "credential" in rejected.fix
        monkeypatch.delenv("VOXHOME_TEST_KEY")
        assert "config-secret" in check_cloud(settings, timeout_s=5).detail
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert check_cloud(settings, timeout_s=2).status == "fail"  # nothing listens any more
    off = replace_path(settings, "cloud.enabled", False)
    assert check_cloud(off).status == "skip"


def test_front_end_check_loads_the_configured_wake_words_and_the_vad() -> None:
    assert check_frontend(Settings()).status == "ok"
    bad = replace_path(Settings(), "wake.words", (WakeWordSettings("okay_nabo"),))
    failed = check_frontend(bad)
    assert failed.status == "fail" and "okay_nabo" in failed.detail and failed.fix
