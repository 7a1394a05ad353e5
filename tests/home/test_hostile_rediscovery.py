"""Two holes `voxhome bench hostile` found in the home tools, closed: a risky entity "moved" by a
re-announcement leaves its old topic guarded, and an ill-typed device_class can't break every call."""

from __future__ import annotations

import asyncio
import json

from device.bench.hostile_wire import Recorder as RecordingLink
from device.events import ToolCall, ToolResult
from device.tools.registry import Registry
from device.tools.tools import HomeTools
from tests.home.conftest import demo_registry

GARAGE = "homeassistant/cover/garage_door/config"


def _run(registry: Registry, name: str, arguments: dict) -> tuple[ToolResult, list[tuple[str, bytes]]]:
    link = RecordingLink(registry)
    result = asyncio.run(HomeTools(registry, link, timeout_s=0.001).execute(ToolCall(name, arguments, call_id="t")))
    return result, link.sent


def test_a_garage_door_moved_by_rediscovery_keeps_its_old_topic_guarded() -> None:
    registry = demo_registry()
    moved = {"name": "Garage door", "unique_id": "garage_door", "device_class": "garage", "command_topic": "home/elsewhere/set"}
    registry.handle(GARAGE, json.dumps(moved).encode())
    registry.handle("homeassistant/light/garage_lamp/config", json.dumps(
        {"name": "Garage lamp", "uniq_id": "garage_lamp", "cmd_t": "home/garage/set", "pl_on": "OPEN", "pl_off": "CLOSE"}).encode())
    result, sent = _run(registry, "turn_on", {"entity": "garage lamp"})
    assert result.status == "needs_confirmation" and sent == []
    # Removed outright, the same: the real door still listens on its topic.
    registry.handle(GARAGE, b"")
    result, sent = _run(registry, "turn_on", {"entity": "garage lamp"})
    assert result.status == "needs_confirmation" and sent == []


def test_a_plain_reannouncement_changes_nothing() -> None:
    registry = demo_registry()
    lock = next(e for e in registry.guarded_entities() if e.id == "lock.front_door")
    for _ in range(3):  # Home Assistant restarting re-publishes the same configs
        registry.handle("homeassistant/lock/front_door/config", json.dumps(dict(lock.config, name="Front door")).encode())
    assert [e.id for e in registry.guarded_entities()].count("lock.front_door") == 1
    result, sent = _run(registry, "lock", {"entity": "front door"})
    assert result.status in ("ok", "unconfirmed") and sent == [("home/front_door/set", b"LOCK")]


def test_a_cover_with_an_ill_typed_device_class_breaks_no_call() -> None:
    registry = demo_registry()
    registry.handle("homeassistant/cover/odd/config", json.dumps(
        {"name": "Odd blind", "uniq_id": "odd", "cmd_t": "home/odd/set", "device_class": ["garage"]}).encode())
    result, sent = _run(registry, "turn_on", {"entity": "kitchen light"})
    assert result.status in ("ok", "unconfirmed") and [t for t, _ in sent] == ["zigbee2mqtt/kitchen_light/set"]


def test_a_lock_reannounced_with_an_opening_lock_payload_still_asks() -> None:
    registry = demo_registry()
    lock = next(e for e in registry.guarded_entities() if e.id == "lock.front_door")
    registry.handle("homeassistant/lock/front_door/config", json.dumps(dict(lock.config, name="Front door", payload_lock="OPEN")).encode())
    result, sent = _run(registry, "lock", {"entity": "front door"})
    assert result.status == "needs_confirmation" and sent == []
