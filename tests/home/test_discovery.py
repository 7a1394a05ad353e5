"""Discovery parsing against the collected real payloads and the tricky corners of the format."""

from __future__ import annotations

import json

import pytest

from device.tools.abbreviations import ABBREVIATIONS
from device.tools.discovery import (
    DiscoveryError,
    Removal,
    announce_configs,
    expand,
    parse_message,
    parse_topic,
)
from tests.home.conftest import REFERENCE


def examples() -> list[dict]:
    return json.loads(REFERENCE.read_text())["examples"]


def payload_bytes(example: dict) -> bytes:
    p = example["payload"]
    return b"" if p in ("", None) else json.dumps(p).encode()


@pytest.mark.parametrize("example", [e for e in examples() if "expanded" in e], ids=lambda e: e["id"])
def test_abbreviated_examples_expand_to_the_documented_full_form(example: dict) -> None:
    parsed = parse_message(example["topic"], payload_bytes(example))
    assert isinstance(parsed, list) and len(parsed) == 1
    assert parsed[0].config == example["expanded"]


@pytest.mark.parametrize("example", examples(), ids=lambda e: e["id"])
def test_every_reference_example_parses(example: dict) -> None:
    parsed = parse_message(example["topic"], payload_bytes(example))
    if example["payload"] in ("", None):
        assert parsed == Removal(example["topic"])
        return
    assert isinstance(parsed, list) and parsed
    for entity in parsed:
        assert entity.entity_id.split(".")[0] == entity.component
        assert entity.name
        # No abbreviation survives expansion.
        assert not set(entity.config) & (set(ABBREVIATIONS) - set(ABBREVIATIONS.values()))


def test_topic_forms() -> None:
    assert parse_topic("homeassistant/light/kitchen/config") == ("light", "", "kitchen")
    assert parse_topic("homeassistant/light/node-1/kitchen/config") == ("light", "node-1", "kitchen")
    assert parse_topic("custom/switch/a/config", "custom") == ("switch", "", "a")
    for bad in ("homeassistant/light/config", "homeassistant/light/a/b/c/config", "homeassistant/light/k itchen/config",
                "homeassistant/light/kitchen/state", "other/light/kitchen/config", "homeassistant/light/+/config"):
        assert parse_topic(bad) is None, bad


def test_base_topic_is_replaced_only_at_start_or_end_of_topic_values() -> None:
    config = expand({"~": "base/x", "cmd_t": "~/set", "stat_t": "state/~", "json_attr_t": "a/~/b", "name": "~name",
                     "avty": [{"t": "~/avail"}]})
    assert config["command_topic"] == "base/x/set"
    assert config["state_topic"] == "state/base/x"
    assert config["json_attributes_topic"] == "a/~/b"  # in the middle: left alone
    assert config["name"] == "~name"  # not a topic
    assert config["availability"] == [{"topic": "base/x/avail"}]


def test_device_form_with_components_and_shared_keys() -> None:
    example = next(e for e in examples() if e["component"] == "device")
    parsed = parse_message(example["topic"], payload_bytes(example))
    assert isinstance(parsed, list) and len(parsed) == 2
    assert {e.config["state_topic"] for e in parsed} == {"sensorBedroom/state"}  # the shared root key
    assert {e.config["device_class"] for e in parsed} == {"temperature", "humidity"}
    assert len({e.entity_id for e in parsed}) == 2
    assert parsed[0].device["manufacturer"] == "Bla electronics"
    # Removing one component: it is resent as just {"p": ...}.
    payload = dict(example["payload"])
    payload["cmps"] = {**payload["cmps"], "some_unique_id2": {"p": "sensor"}}
    reduced = parse_message(example["topic"], json.dumps(payload).encode())
    assert isinstance(reduced, list) and [e.config["device_class"] for e in reduced] == ["temperature"]


def test_suggested_area_name_rules_and_unknown_keys() -> None:
    parsed = parse_message("homeassistant/light/x/config", json.dumps({
        "name": None, "cmd_t": "x/set", "dev": {"ids": ["x"], "name": "Desk lamp", "sa": "Study"},
        "some_future_key": {"nested": True},
    }).encode())
    assert isinstance(parsed, list)
    (entity,) = parsed
    assert (entity.name, entity.area, entity.entity_id) == ("Desk lamp", "Study", "light.desk_lamp")


def test_unsupported_components_are_skipped_not_errors() -> None:
    assert parse_message("homeassistant/vacuum/v/config", b'{"name": "Robo"}') == []


@pytest.mark.parametrize("payload", [b"{", b"[1,2]", b"\xff\xfe", b"null", b'"text"', b"9" * 70000,
                                     b'{"cmps": 3}', b'{"cmps": {"a": {"name": "no platform"}}}'])
def test_malformed_payloads_raise_a_discovery_error(payload: bytes) -> None:
    topic = "homeassistant/device/d1/config" if b"cmps" in payload else "homeassistant/light/x/config"
    with pytest.raises(DiscoveryError) as info:
        parse_message(topic, payload)
    assert info.value.code == "discovery-invalid"


def test_our_own_announcement_is_valid_discovery() -> None:
    configs = announce_configs("kitchen-speaker", "Kitchen speaker", "0.1")
    parsed = [e for topic, payload in configs for e in parse_message(topic, payload)]  # type: ignore[union-attr]
    by_component = {e.component: e for e in parsed}
    assert set(by_component) == {"switch", "sensor"}
    mute = by_component["switch"].config
    assert mute["command_topic"] == "voxhome/kitchen-speaker/mute/set"
    assert mute["availability_topic"] == "voxhome/kitchen-speaker/availability"
    assert by_component["sensor"].config["state_topic"] == "voxhome/kitchen-speaker/last_command"
    assert by_component["switch"].device["identifiers"] == ["voxhome_kitchen-speaker"]
