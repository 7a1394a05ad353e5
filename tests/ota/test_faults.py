"""Every fault leaves the device on a complete, verified model with a status saying what happened.

All against a real HTTP server on 127.0.0.1 (Range support, fault switches) and real TUF metadata.
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import onnx
import paho.mqtt.client as paho
import pytest
import soundfile
from onnx import TensorProto, helper

from device.bench.speech import concat, silence, synthesize
from device.errors import OtaError
from device.settings import MqttSettings
from models.manifest import Golden
from models.vad import builtin_model_path
from ota.agent import STATUS_NAME, Agent
from ota.atomic import FileSystem
from ota.notify import OtaMqtt, notify_topic, status_topic
from ota.publish import Repository, keygen, load_keydir, load_signer
from tests.ota.conftest import Served, Vendor, new_agent
from tests.ota.simfs import SimulatedPowerCutFS

Device = tuple[Agent, Served, Vendor]


def tiny_onnx(scale: float = 1.0) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def states(results: list[dict[str, object]]) -> list[object]:
    return [r["state"] for r in results]


def active_version(agent: Agent) -> str:
    return agent.store.load_active("vad")[1].version


def test_update_trial_and_confirm_with_real_health_check(device: Device) -> None:
    agent, _served, vendor = device
    # A real VAD model with its golden speech and silence: the child process runs it on both.
    speech = io.BytesIO()
    soundfile.write(speech, concat(silence(0.3), synthesize("turn on the kitchen light"), silence(0.3)), 16000, format="WAV")
    room = io.BytesIO()
    soundfile.write(room, np.zeros(16000), 16000, format="WAV")
    vendor.publish("1.1.0", extra={"silero_vad.onnx": builtin_model_path().read_bytes(), "speech.wav": speech.getvalue(),
                                   "room.wav": room.getvalue()},
                   golden=(Golden("speech.wav", "speech"), Golden("room.wav", "silence")))
    assert [d.action for d in agent.check()] == ["update"]
    results = agent.apply()
    assert states(results) == ["pending"]
    assert "2 golden clip(s) as expected" in str(results[0]["message"])
    seen = [s["state"] for s in agent.statuses]  # type: ignore[attr-defined]
    assert seen[0] == "downloading" and "installing" in seen and seen[-1] == "pending"
    assert active_version(agent) == "1.1.0"
    assert agent.store.load().kind("vad").floor == "1.0.0"
    assert states(agent.boot()) == ["pending"]
    assert agent.confirm("vad")["state"] == "success"
    assert agent.store.load().kind("vad").floor == "1.1.0"
    assert [d.action for d in agent.check()] == ["up-to-date"]


def test_tampered_bundle_is_refused(device: Device) -> None:
    agent, _served, vendor = device
    vendor.publish("1.1.0")
    (served_file,) = (vendor.repo.path / "targets" / "bundles").glob("*.vad.tar")
    data = bytearray(served_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one flipped bit
    served_file.write_bytes(bytes(data))
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-hash"
    assert active_version(agent) == "1.0.0"
    assert not list(agent.store.downloads.glob("*.part"))  # corrupt bytes are never resumed from
    assert json.loads((agent.config.state_dir / STATUS_NAME).read_text())["code"] == "ota-hash"


def test_wrong_key_is_refused(device: Device, tmp_path: Path) -> None:
    agent, served, vendor = device
    rogue_keys = tmp_path / "rogue-keys"
    for name in ("root", "targets", "snapshot", "timestamp"):
        keygen(rogue_keys, name)
    # Same URL, repository re-created by someone holding other keys.
    (vendor.repo.path / "metadata").rename(tmp_path / "old-metadata")
    rogue = Repository(vendor.repo.path)
    rogue.init(load_keydir(rogue_keys))
    Vendor(tmp_path, rogue_keys, rogue).publish("9.0.0")
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-bad-signature", results
    assert active_version(agent) == "1.0.0"


def test_expired_metadata_is_refused(device: Device) -> None:
    agent, _served, vendor = device
    vendor.repo.expiry["timestamp"] = timedelta(seconds=-60)
    vendor.publish("1.1.0")
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-expired"
    assert active_version(agent) == "1.0.0"


def test_downgrade_below_the_floor_is_refused(device: Device) -> None:
    agent, _served, vendor = device
    vendor.publish("1.2.0")
    assert states(agent.apply()) == ["pending"]
    agent.confirm("vad")
    # Validly signed, newer metadata that lists an older bundle: TUF accepts it, the floor doesn't.
    vendor.publish("1.1.0", allow_downgrade=True)
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-downgrade"
    assert "floor 1.2.0" in str(results[0]["message"])
    assert active_version(agent) == "1.2.0"
    with pytest.raises(OtaError) as err:
        vendor.publish("1.0.1")  # the publisher refuses too, unless told otherwise
    assert err.value.code == "ota-downgrade"


def test_truncated_download_resumes_with_range(device: Device) -> None:
    agent, served, vendor = device
    vendor.publish("1.1.0", size=200_000)
    served.control.truncate_at = 50_000
    first = agent.apply()
    assert states(first) == ["failure"] and first[0]["code"] == "ota-download"
    (part,) = agent.store.downloads.glob("vad-*.part")
    assert part.stat().st_size == 50_000
    assert active_version(agent) == "1.0.0"
    assert states(agent.apply()) == ["pending"]
    target_requests = [r for r in served.control.requests if r[0].startswith("/targets/")]
    assert [r[1] for r in target_requests] == [None, "bytes=50000-"]
    assert active_version(agent) == "1.1.0"


def test_server_ignoring_range_restarts_the_download(device: Device) -> None:
    agent, served, vendor = device
    vendor.publish("1.1.0", size=100_000)
    served.control.truncate_at = 10_000
    agent.apply()
    served.control.ignore_range = True
    assert states(agent.apply()) == ["pending"]
    assert active_version(agent) == "1.1.0"


def test_disk_full_while_writing(device: Device, tmp_path: Path) -> None:
    agent, served, vendor = device
    vendor.publish("1.1.0", size=100_000)
    full = SimulatedPowerCutFS(agent.config.state_dir, enospc_after_bytes=40_000)
    stuck = new_agent(agent.config.state_dir, served.url, vendor.root, fs=full)
    results = stuck.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-disk-full"
    assert active_version(agent) == "1.0.0"
    assert states(agent.apply()) == ["pending"]  # space back: it completes


def test_not_enough_free_space_is_refused_before_downloading(device: Device) -> None:
    agent, served, vendor = device
    vendor.publish("1.1.0", size=100_000)

    class SmallDisk(FileSystem):
        def free_bytes(self, path: Path) -> int:
            return 150_000

    results = new_agent(agent.config.state_dir, served.url, vendor.root, fs=SmallDisk()).apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-disk-full"
    assert not [r for r in served.control.requests if r[0].startswith("/targets/")]


def test_failing_health_check_switches_nothing(device: Device) -> None:
    agent, _served, vendor = device
    vendor.publish("1.1.0", extra={"model.onnx": b"not an onnx model at all"})
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-health"
    assert "model" in str(results[0]["message"])
    assert active_version(agent) == "1.0.0" and agent.store.load().kind("vad").trial is None
    again = agent.apply()  # not retried: the version is remembered as bad
    assert again[0]["code"] == "ota-rejected"


def test_server_down_is_a_clear_failure(device: Device) -> None:
    agent, served, vendor = device
    vendor.publish("1.1.0")
    served.control.down = True
    results = agent.apply()
    assert states(results) == ["failure"] and results[0]["code"] == "ota-download"
    assert active_version(agent) == "1.0.0"


def test_trial_rolls_back_when_attempts_run_out(device: Device) -> None:
    agent, _served, vendor = device
    vendor.publish("1.1.0")
    agent.apply()
    for left in (2, 1, 0):
        assert agent.boot()[0]["message"] == f"on trial, {left} attempts left"
    result = agent.boot()[0]
    assert result["state"] == "rolled-back" and result["version"] == "1.0.0"
    assert active_version(agent) == "1.0.0"
    assert agent.apply()[0]["code"] == "ota-rejected"


def test_manual_rollback_and_nothing_to_roll_back(device: Device) -> None:
    agent, _served, vendor = device
    with pytest.raises(OtaError) as err:
        agent.rollback("vad")
    assert err.value.code == "ota-no-rollback"
    vendor.publish("1.1.0")
    agent.apply()
    assert agent.rollback("vad")["state"] == "rolled-back"
    assert active_version(agent) == "1.0.0"


def test_key_rotation_is_followed(device: Device, tmp_path: Path) -> None:
    agent, _served, vendor = device
    newkeys = tmp_path / "new-keys"
    keygen(newkeys, "targets-new")
    keygen(newkeys, "root-new")
    keys = load_keydir(vendor.keydir)
    assert vendor.repo.rotate("targets", [load_signer(newkeys / "targets-new.pem")], keys) == 2
    assert vendor.repo.rotate("root", [load_signer(newkeys / "root-new.pem")], keys) == 3
    # From now on the old targets key is useless: publish with the new one.
    (vendor.keydir / "targets.pem").rename(tmp_path / "retired-targets.pem")
    (newkeys / "targets-new.pem").rename(vendor.keydir / "targets-new.pem")
    try:
        vendor.publish("1.1.0")
    finally:
        (vendor.keydir / "targets-new.pem").unlink()
        (tmp_path / "retired-targets.pem").rename(vendor.keydir / "targets.pem")
    assert states(agent.apply()) == ["pending"]  # the device walked root 1 → 2 → 3 from its bootstrap
    assert active_version(agent) == "1.1.0"


def test_threshold_is_enforced_at_publish(tmp_path: Path, keydir: Path) -> None:
    repo = Repository(tmp_path / "repo")
    with pytest.raises(OtaError) as err:
        repo.init(load_keydir(keydir), {"root": 2})
    assert err.value.code == "ota-threshold"


def _subscriber(host: str, port: int, topic: str) -> tuple[paho.Client, list[dict[str, object]]]:
    got: list[dict[str, object]] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    client.connect(host, port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    return client, got


def _wait(predicate: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_mqtt_down_then_back_gets_the_retained_status(device: Device, mosquitto: object) -> None:
    agent, served, vendor = device
    broker = mosquitto
    broker.stop()  # type: ignore[attr-defined]
    mqtt = OtaMqtt(MqttSettings(host=broker.host, port=broker.port, reconnect_min_s=0.5, reconnect_max_s=1.0), "spk1")  # type: ignore[attr-defined]
    mqtt.start()
    try:
        vendor.publish("1.1.0")
        results = new_agent(agent.config.state_dir, served.url, vendor.root, sink=mqtt.publish_status).apply()
        assert states(results) == ["pending"]  # the update doesn't wait for the broker
        broker.start()  # type: ignore[attr-defined]
        assert mqtt.wait_connected(15)
        client, got = _subscriber(broker.host, broker.port, status_topic("spk1"))  # type: ignore[attr-defined]
        try:
            assert _wait(lambda: any(s.get("state") == "pending" and s.get("version") == "1.1.0" for s in got))
        finally:
            client.loop_stop()
            client.disconnect()
    finally:
        mqtt.stop()


def test_retained_notification_triggers_an_update(device: Device, mosquitto: object) -> None:
    agent, served, vendor = device
    broker = mosquitto
    publisher = paho.Client(paho.CallbackAPIVersion.VERSION2)
    publisher.connect(broker.host, broker.port)  # type: ignore[attr-defined]
    publisher.loop_start()
    mqtt = OtaMqtt(MqttSettings(host=broker.host, port=broker.port), "spk2")  # type: ignore[attr-defined]
    mqtt.start()
    assert mqtt.wait_connected(10)
    runner = new_agent(agent.config.state_dir, served.url, vendor.root, sink=mqtt.publish_status)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop, mqtt.wake), kwargs={"interval_s": 3600, "stable_s": 3600})
    thread.start()
    try:
        assert _wait(lambda: (runner.last_status() or {}).get("state") == "idle" or served.control.requests)
        vendor.publish("1.1.0")
        publisher.publish(notify_topic("spk2"), json.dumps({"vad": "1.1.0"}), qos=1, retain=True).wait_for_publish()
        assert _wait(lambda: runner.store.load().kind("vad").version == "1.1.0", 20)
        assert mqtt.notifications == [{"vad": "1.1.0"}]
    finally:
        stop.set()
        mqtt.wake.set()
        thread.join(20)
        mqtt.stop()
        publisher.loop_stop()
        publisher.disconnect()
    assert (runner.last_status() or {}).get("state") == "pending"


def test_onnx_helper_builds_a_valid_model() -> None:
    onnx.checker.check_model(onnx.load_from_string(tiny_onnx()))
