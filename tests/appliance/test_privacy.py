"""What the service logs at full verbosity over a whole turn: which way the utterance went and
why — never what was said, never a secret, never audio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile

from device.bench.speech import concat, silence, synthesize
from device.sim.broker import Mosquitto
from tests.home.conftest import SimHome

ROOT = Path(__file__).resolve().parents[2]
SAID = "turn on the kitchen light"


def test_debug_logs_of_a_whole_turn_hold_no_speech_and_no_secret(tmp_path: Path, mosquitto: Mosquitto) -> None:
    audio = tmp_path / "turn.wav"
    soundfile.write(str(audio), concat(silence(0.7), synthesize("okay nabu"), silence(0.4),
                                       synthesize(SAID), silence(2.0)), 16000)
    config = tmp_path / "config.toml"
    config.write_text(
        f"[device]\nid = 'privacy'\nstate_dir = '{tmp_path / 'state'}'\n"
        f"[mqtt]\nhost = '{mosquitto.host}'\nport = {mosquitto.port}\nusername = 'voxhome'\n"
        "password = { env = 'TEST_MQTT_PASSWORD' }\n"
        # The cloud is on but unreachable: its key is read and must not leak either.
        "[cloud]\nenabled = true\nurl = 'ws://127.0.0.1:9/v1/realtime'\napi_key = { env = 'TEST_CLOUD_KEY' }\n"
        "[audio.speaker]\nbackend = 'null'\n"
    )
    env = dict(os.environ, TEST_MQTT_PASSWORD="hunter2-mqtt-pw", TEST_CLOUD_KEY="sk-live-do-not-log")
    home = SimHome(mosquitto)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "device", "-vv", "--config", str(config), "run", "--audio", str(audio)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
    finally:
        home.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    # The turn really happened (stdout is the command's output, where the transcript belongs) …
    assert any(e["type"] == "transcript" and "kitchen" in e["text"].lower() for e in events)
    assert any(e["type"] == "tool_result" and e["status"] == "ok" for e in events)
    # … and the log of it, at debug level, says what was done and why, not what was said.
    logs = done.stderr
    assert "DEBUG" in logs and "route local" in logs, logs[-2000:]
    for secret in ("hunter2-mqtt-pw", "sk-live-do-not-log"):
        assert secret not in logs
    assert SAID not in logs.lower() and "turn on the kitchen" not in logs.lower()
