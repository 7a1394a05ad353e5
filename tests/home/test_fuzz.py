"""Hypothesis: hostile discovery payloads and tool arguments never crash anything and never make
voxhome publish outside the known entities' command topics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from device.bench.hostile_wire import Recorder as RecordingLink
from device.events import ToolCall
from device.tools.abbreviations import ABBREVIATIONS
from device.tools.discovery import COMPONENTS
from device.tools.tools import _TOOLS, HomeTools
from tests.home.conftest import demo_language, demo_registry

TOPICISH = st.sampled_from(["a/b", "#", "+", "a/+/b", "~/set", "x/~", "", "zigbee2mqtt/kitchen_light/set", "\x00", "a" * 300])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=30), TOPICISH)
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
KEYS = st.sampled_from(sorted(set(ABBREVIATIONS) | set(ABBREVIATIONS.values()) | {"~", "dev", "device", "cmps", "p", "platform"}))
CONFIG = st.dictionaries(KEYS, st.one_of(JSONISH, TOPICISH), max_size=12)
COMPONENT = st.sampled_from(sorted(COMPONENTS | {"device", "vacuum", "+", "#"}))
NAME = st.from_regex(r"[A-Za-z0-9_+#/ -]{0,12}", fullmatch=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(component=COMPONENT, node=NAME, obj=NAME, config=CONFIG, raw=st.binary(max_size=64), use_raw=st.booleans())
def test_discovery_never_crashes_and_never_subscribes_wildcards(component: str, node: str, obj: str, config: dict, raw: bytes, use_raw: bool) -> None:
    registry = demo_registry()
    topic = f"homeassistant/{component}/{node + '/' if node else ''}{obj}/config"
    payload = raw if use_raw else json.dumps(config).encode()
    event(f"entities {len(registry.entities())}")
    registry.handle(topic, payload)
    event(f"after {len(registry.entities())}")
    registry.handle(topic.replace(obj, "x"), json.dumps({"cmps": {obj or "c": {**config, "p": component}}, "dev": {}}).encode())
    for sub in registry.subscriptions():
        assert not any(c in sub for c in "+#") or sub.startswith("homeassistant/") and sub.endswith("/config")
    for entity in registry.entities():
        assert entity.id.split(".")[0] == entity.component
    assert demo_language(registry).understand("turn on the kitchen light").kind in ("tool", "not_local", "reject")  # still usable


ARG_VALUE = st.one_of(SCALAR, st.sampled_from(["kitchen light", "light.kitchen_light", "Bedroom", "all", "front door", "climate.thermostat", "sleep"]), st.lists(SCALAR, max_size=3))
ARGS = st.dictionaries(st.sampled_from(["entity", "area", "domain", "brightness", "kelvin", "temperature", "mode", "percentage", "preset", "position", "topic", "payload"]) | st.text(max_size=6), ARG_VALUE, max_size=5)


TARGET = st.sampled_from(["kitchen light", "light.kitchen_light", "bedside lamp", "front door", "garage door", "blinds",
                          "climate.thermostat", "bedroom fan", "movie night", "coffee maker", "back door", "switch.evil",
                          "Evil", "sauna", "#", "a/+/b"])
AREA = st.sampled_from(["Kitchen", "bedroom", "Living Room", "all", "Garage", "nowhere", "#"])


@st.composite
def plausible_call(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """Mostly schema-valid calls, so the fuzzing reaches entity resolution and publishing."""
    name = draw(st.sampled_from(sorted(_TOOLS)))
    args: dict[str, Any] = {}
    if draw(st.booleans()) or not _TOOLS[name][5]:
        args["entity"] = draw(TARGET)
    else:
        args["area"] = draw(AREA)
        if draw(st.booleans()):
            args["domain"] = draw(st.sampled_from(["light", "switch", "fan", "climate", "cover"]))
    value_key = _TOOLS[name][3]
    if value_key:
        args[value_key] = draw(st.one_of(st.integers(-5, 105), st.integers(1000, 10001), st.floats(-5, 50, allow_nan=False),
                                         st.sampled_from(["heat", "off", "sleep", "breeze", "turbo", "#"])))
    return name, args


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=st.one_of(plausible_call(), plausible_call(), plausible_call(), st.tuples(st.sampled_from(sorted(_TOOLS)) | st.text(max_size=10), ARGS)),
       confirmed=st.booleans(), evil=st.one_of(st.none(), CONFIG))
# Found by this test: an integral float (valid "integer" in JSON Schema) crashed the light command.
@example(call=("set_brightness", {"area": "Living Room", "brightness": 1.0}), confirmed=False, evil=None)
def test_tool_arguments_never_crash_or_escape_the_allow_list(call: tuple[str, dict[str, Any]], confirmed: bool, evil: dict | None) -> None:
    name, arguments = call
    registry = demo_registry()
    if evil is not None:
        registry.handle("homeassistant/switch/evil/config", json.dumps(evil).encode())
    allowed = registry.command_topics()
    link = RecordingLink(registry)
    tools = HomeTools(registry, link, timeout_s=0.001)
    result = asyncio.run(tools.execute(ToolCall(name, arguments, call_id="f"), confirmed=confirmed))
    assert result.status in ("ok", "unconfirmed", "needs_confirmation", "error")
    event(f"{result.status} {result.data.get('code', '')}")
    assert isinstance(result.message, str)
    for topic, payload in link.sent:
        assert topic in allowed and not any(c in topic for c in "+#\x00")
        assert len(payload) <= 4096
    if result.status == "needs_confirmation":
        assert link.sent == []
