"""Telemetry: aggregation from events, Prometheus text, retained status on a real broker."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from device.events import CloudReply, Detection, Error, Routed, Spoke, Transcript, VoiceStopped
from device.sim.broker import Mosquitto
from device.system.telemetry import (
    StatusReporter,
    Telemetry,
    TelemetryOutput,
    process_usage,
    render_prometheus,
    render_status,
)


def _one_turn(t: Telemetry, at: float, way: str = "local") -> None:
    t.observe(Detection(word="okay_nabu", score=0.99, timestamp_ms=1000), at)
    t.observe(VoiceStopped(timestamp_ms=2500, start_ms=1200, audio=b"\x01" * 64), at + 1.5)
    t.observe(Transcript(text="turn on the kitchen light secret", timestamp_ms=2500), at + 1.8)
    t.observe(Routed(way=way, reason="command"), at + 1.81)
    t.observe(Spoke(prompt="ok", text=None, duration_ms=300, synth_ms=5), at + 2.0)


def test_stage_latencies_and_counts() -> None:
    t = Telemetry(models={"asr": "1.2.0"})
    _one_turn(t, 10.0)
    _one_turn(t, 20.0, way="cloud")
    t.observe(Error(code="cloud-timeout", message="x"), 30.0)
    snap = t.snapshot()
    assert snap.counts == {"wakes": 2, "local": 1, "cloud": 1, "dropped": 0, "failed": 1}
    assert snap.stages["wake_to_end_of_speech"].last_ms == 1500
    assert snap.stages["end_of_speech_to_transcript"].mean_ms == pytest.approx(300)
    # Only the local turn is an action on the device; the cloud turn has its own stage.
    assert snap.stages["transcript_to_action"].max_ms == pytest.approx(200)
    assert snap.stages["transcript_to_action"].count == 1


def test_cloud_first_reply_audio_is_its_own_stage() -> None:
    t = Telemetry()
    t.observe(Transcript(text="what is the weather", timestamp_ms=2500), 1.0)
    t.observe(Routed(way="cloud", reason="not a home command"), 1.01)
    t.observe(CloudReply("ok", played_ms=2000, first_audio_ms=420), 4.0)
    t.observe(CloudReply("failed", code="cloud-timeout"), 9.0)  # no audio: no sample
    snap = t.snapshot()
    assert snap.stages["cloud_turn_to_first_reply_audio"].count == 1
    assert snap.stages["cloud_turn_to_first_reply_audio"].last_ms == 420
    assert snap.stages["transcript_to_action"].count == 0


def test_status_and_metrics_never_carry_audio_or_text() -> None:
    t = Telemetry(models={"wake": "okay_nabu-3"})
    _one_turn(t, 0.0)
    cpu, rss = process_usage()
    assert cpu > 0 and rss > 1_000_000
    snap = t.snapshot(cpu, rss)
    for text in (render_status(snap, "kitchen"), render_prometheus(snap, "kitchen")):
        assert "secret" not in text and "kitchen light" not in text and "\\u0001" not in text
    prom = render_prometheus(snap, "kitchen")
    assert 'voxhome_events_total{device="kitchen",kind="wakes"} 1' in prom
    assert 'voxhome_model_info{device="kitchen",kind="wake",version="okay_nabu-3"} 1' in prom
    for line in prom.splitlines():  # exposition format: comments or "name{labels} number"
        assert line.startswith("#") or float(line.rsplit(" ", 1)[1]) >= 0


def test_retained_status_on_broker_and_prom_file(mosquitto: Mosquitto, tmp_path: Path) -> None:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    prom = tmp_path / "metrics" / "voxhome.prom"
    prom.parent.mkdir()

    def publish(topic: str, payload: str, retain: bool) -> None:
        pub.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    reporter = StatusReporter("kitchen", 60.0, publish, prometheus_file=prom)
    t = Telemetry(models={"asr": "1"})
    assert reporter.maybe_publish(t.snapshot(), 0.0)
    assert not reporter.maybe_publish(t.snapshot(), 10.0)  # nothing changed, interval not due
    _one_turn(t, 11.0)
    assert reporter.maybe_publish(t.snapshot(), 13.0)  # changed: published early
    assert reporter.maybe_publish(t.snapshot(), 73.0)  # interval
    pub.loop_stop()
    pub.disconnect()
    assert "voxhome_events_total" in prom.read_text()
    assert not list(prom.parent.glob("*.tmp"))

    # A late subscriber gets the retained status.
    got: list[dict[str, Any]] = []
    done = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        got.append(json.loads(message.payload))
        done.set()

    sub.on_message = on_message
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("voxhome/kitchen/status")
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        assert done.wait(5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got[0]["counts"]["wakes"] == 1 and got[0]["models"] == {"asr": "1"}


def test_output_handler_uses_the_injected_clock_and_publishes_on_change(tmp_path: Path) -> None:
    now = [100.0]
    sent: list[tuple[str, dict[str, Any], bool]] = []
    prom = tmp_path / "voxhome.prom"
    reporter = StatusReporter(
        "hall", 60.0, lambda t, p, r: sent.append((t, json.loads(p), r)), prometheus_file=prom
    )
    out = TelemetryOutput(reporter, models={"asr": "2"}, clock=lambda: now[0], usage=lambda: (1.5, 4096))
    out.handle(Detection(word="alexa", score=0.9, timestamp_ms=0))  # first event: published
    assert len(sent) == 1 and sent[0][0] == "voxhome/hall/status" and sent[0][2] is True
    now[0] = 101.0
    out.handle(VoiceStopped(timestamp_ms=900, start_ms=0, audio=b"\x02" * 32))  # no change in counts
    assert len(sent) == 1
    now[0] = 101.4
    out.handle(Transcript(text="what time is it", timestamp_ms=900))
    assert out.telemetry.snapshot().stages["end_of_speech_to_transcript"].last_ms == pytest.approx(400)
    assert not out.tick()  # nothing changed and the interval is not due
    now[0] = 161.5
    assert out.tick() and len(sent) == 2  # the interval
    status = sent[-1][1]
    assert status["counts"]["wakes"] == 1 and "what time" not in json.dumps(status)
    assert "voxhome_" in prom.read_text()
