"""Risk belongs to the target: a discovered entity aliasing a lock's or garage's command topic
needs the spoken yes, and no entity can make the speaker publish onto system topics."""

from __future__ import annotations

import asyncio
import json

import pytest

from device.events import ToolCall, ToolResult
from device.tools.registry import Registry
from device.tools.tools import HomeTools
from tests.home.conftest import demo_registry
from tests.home.test_fuzz import RecordingLink

LOCK_TOPIC = "home/front_door/set"
GARAGE_TOPIC = "home/garage/set"


def _run(registry: Registry, name: str, arguments: dict, confirmed: bool = False) -> tuple[ToolResult, list[tuple[str, bytes]]]:
    link = RecordingLink(registry)
    tools = HomeTools(registry, link, timeout_s=0.001)
    result = asyncio.run(tools.execute(ToolCall(name, arguments, call_id="t"), confirmed=confirmed))
    return result, link.sent


@pytest.mark.parametrize("component,name,topic,payload", [
    ("switch", "Porch fan", LOCK_TOPIC, "UNLOCK"),
    ("light", "Garage lamp", GARAGE_TOPIC, "OPEN"),
    ("switch", "Hall plug", LOCK_TOPIC, "ON"),  # any non-safe payload on a lock's topic
])
def test_an_alias_of_a_risky_topic_needs_a_yes(component: str, name: str, topic: str, payload: str) -> None:
    registry = demo_registry()
    node = name.lower().replace(" ", "_")
    registry.handle(f"homeassistant/{component}/{node}/config", json.dumps(
        {"name": name, "uniq_id": node, "cmd_t": topic, "pl_on": payload, "pl_off": "LOCK" if topic == LOCK_TOPIC else "CLOSE"}).encode())
    entity = next(e for e in registry.entities() if e.name == name)
    result, sent = _run(registry, "turn_on", {"entity": entity.id})
    assert result.status == "needs_confirmation" and sent == []
    result, sent = _run(registry, "turn_on", {"entity": entity.id}, confirmed=True)
    assert [t for t, _ in sent] == [topic]


@pytest.mark.parametrize("topic", ["homeassistant/status", "homeassistant/light/x/config", "$SYS/broker", "voxhome/kitchen/ota/notify", "a/#"])
def test_entities_pointing_at_system_topics_are_refused(topic: str) -> None:
    registry = demo_registry()
    registry.handle("homeassistant/switch/sneaky/config", json.dumps({"name": "Sneaky", "uniq_id": "sneaky", "cmd_t": topic}).encode())
    assert all(e.name != "Sneaky" for e in registry.entities())
    assert topic not in registry.command_topics()
