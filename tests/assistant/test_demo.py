"""The README's demo, end to end as a user runs it: real wake word, VAD, speech model, mosquitto,
virtual home and fake realtime server, on synthesized speech; checked from its JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile


def test_demo_runs_every_turn_and_changes_the_virtual_home(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "device", "demo", "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types.count("wake") == 4
    calls = [(e["name"], e["arguments"]) for e in events if e["type"] == "tool_call"]
    assert calls == [
        ("turn_on", {"entity": "light.kitchen_light"}),
        ("set_temperature", {"entity": "climate.thermostat", "temperature": 21}),
        ("unlock", {"entity": "lock.front_door"}),
        ("unlock", {"entity": "lock.front_door"}),
    ]
    results = [(e["name"], e["status"]) for e in events if e["type"] == "tool_result"]
    assert results == [
        ("turn_on", "ok"), ("set_temperature", "ok"), ("unlock", "needs_confirmation"), ("unlock", "ok"),
        ("turn_on", "ok"),  # the cloud's tool call, through the same home tools
    ]
    routes = [e["way"] for e in events if e["type"] == "route"]
    assert routes == ["local", "local", "local", "cloud"]
    reply = next(e for e in events if e["type"] == "cloud_reply")
    # The fake cloud's reply is 1.2 s (device/sim/cloud.py); the turn ends once all of it was heard.
    assert reply["status"] == "ok" and 1190 <= reply["played_ms"] <= 1220
    done = events[-1]
    assert done["type"] == "demo" and done["step"] == "done"
    assert done["states"]["light.kitchen_light"]["state"] == "on"
    assert done["states"]["climate.thermostat"]["temperature"] == 21
    assert done["states"]["lock.front_door"]["state"] == "unlocked"
    assert done["states"]["light.living_room_lamp"]["state"] == "on"
    # Everything the speaker said went through the one player into its output file.
    spoke = [e for e in events if e["type"] == "spoke"]
    assert [e["prompt"] for e in spoke].count("wake") == 4
    assert {"Turned on the kitchen light.", "Do you want me to unlock the front door?"} <= {e["text"] for e in spoke}
    played, rate = soundfile.read(done["speaker_audio"])
    spoken_s = sum(e["duration_ms"] for e in spoke) / 1000 + reply["played_ms"] / 1000
    assert rate == 16000 and abs(len(played) / rate - spoken_s) < 0.5
