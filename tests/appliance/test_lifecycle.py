"""`voxhome run` as systemd runs it: READY only once it listens, watchdog pings from the audio
loop, telemetry on the retained status topic and in the Prometheus file, mute reported there, and
SIGTERM → STOPPING=1, availability offline, exit 0.

A real broker, the real service process and a unix datagram socket standing in for systemd's
$NOTIFY_SOCKET (the protocol is exactly that socket).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import soundfile

from device.sim.broker import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


class Systemd:
    """The notify socket: every datagram the service sends, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def wait_for(self, line: str, timeout: float) -> float:
        """Return when a datagram holding `line` arrives (its arrival time); fail after timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            now = time.monotonic()
            self.messages.append((now, data))
            if line in data.splitlines():
                return now
        raise AssertionError(f"no {line!r} within {timeout} s; got {[m for _, m in self.messages]}")

    def count(self, line: str, seconds: float) -> int:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                pass
        return sum(line in m.splitlines() for t, m in self.messages if t >= end - seconds)


class Retained:
    """Last message per topic under voxhome/<id>/#, from a real MQTT subscriber."""

    def __init__(self, broker: Mosquitto, device_id: str) -> None:
        self.last: dict[str, bytes] = {}
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lifecycle-test")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"voxhome/{device_id}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.last[msg.topic] = msg.payload
            self.changed.notify_all()

    def wait(self, topic: str, test: Any, timeout: float = 20) -> bytes:
        with self.changed:
            ok = self.changed.wait_for(lambda: topic in self.last and test(self.last[topic]), timeout)
            assert ok, f"{topic}: {self.last.get(topic)!r}"
            return self.last[topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_service_lifecycle_under_systemd(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # Two minutes of quiet room, paced like a live microphone: the service is up until we stop it.
    audio = tmp_path / "room.wav"
    rng = np.random.default_rng(3)
    soundfile.write(str(audio), (rng.normal(0, 30, 16000 * 120)).astype(np.int16), 16000)
    prom = tmp_path / "voxhome.prom"
    config = tmp_path / "config.toml"
    config.write_text(
        f"[device]\nid = 'lifecycle'\nstate_dir = '{tmp_path / 'state'}'\n"
        f"[mqtt]\nhost = '{mosquitto.host}'\nport = {mosquitto.port}\n"
        "[cloud]\nenabled = false\n[audio.speaker]\nbackend = 'null'\n"
        f"[telemetry]\ninterval_s = 60\nprometheus_file = '{prom}'\n"
    )
    systemd = Systemd(tmp_path / "notify")
    retained = Retained(mosquitto, "lifecycle")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "NOTIFY_SOCKET": str(systemd.path),
           "WATCHDOG_USEC": "1000000"}
    env.update({k: os.environ[k] for k in ("XDG_CACHE_HOME", "LANG") if k in os.environ})
    proc = subprocess.Popen(
        [sys.executable, "-m", "device", "--config", str(config), "run", "--audio", str(audio), "--realtime"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        # A cold cache builds the speech model first; READY must wait for it.
        systemd.wait_for("READY=1", timeout=600)
        assert proc.poll() is None
        assert any("STATUS=loading models" in m for _, m in systemd.messages)
        assert "STATUS=listening" in systemd.messages[-1][1]

        # Watchdog interval 1 s → the audio loop keeps a ping coming every 0.5 s.
        assert systemd.count("WATCHDOG=1", 2.0) >= 2

        status = json.loads(retained.wait("voxhome/lifecycle/status", lambda p: b"models" in p))
        assert status["device"] == "lifecycle" and status["muted"] is False
        assert set(status["models"]) == {"wake", "vad", "asr", "prompts"}
        assert set(status["latency_ms"]) >= {"wake_to_end_of_speech", "transcript_to_action"}
        assert "cpu_s" in status and status["rss_bytes"] > 10_000_000
        assert retained.wait("voxhome/lifecycle/availability", lambda p: True) == b"online"
        text = prom.read_text()
        assert 'voxhome_events_total{device="lifecycle",kind="wakes"} 0' in text
        assert 'voxhome_muted{device="lifecycle"} 0' in text

        # Home Assistant's mute switch: the status says so at once (a change, not the interval).
        retained.client.publish("voxhome/lifecycle/mute/set", b"ON", qos=1)
        retained.wait("voxhome/lifecycle/status", lambda p: json.loads(p)["muted"] is True)
        assert retained.wait("voxhome/lifecycle/mute", lambda p: True) == b"ON"

        proc.send_signal(signal.SIGTERM)
        systemd.wait_for("STOPPING=1", timeout=10)
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
        assert retained.wait("voxhome/lifecycle/availability", lambda p: p == b"offline") == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        retained.close()
        systemd.sock.close()
