"""Registry state tracking, command payload conventions, confirmation policy — pure, on bytes."""

from __future__ import annotations

import json

import pytest

from device.errors import ToolError
from device.settings import settings_from_dict
from device.tools import commands
from device.tools.confirm import ConfirmPolicy
from device.tools.mqtt import backoff_delay, check_command
from device.tools.registry import Registry
from device.tools.templates import MISSING, render_command, render_value
from tests.home.conftest import REFERENCE


def reference(example_id: str) -> dict:
    return next(e for e in json.loads(REFERENCE.read_text())["examples"] if e["id"] == example_id)


def test_json_light_state_uses_brightness_scale_and_mireds() -> None:
    ex = reference("light_json_brightness_color_temp_z2m")
    r = Registry()
    assert r.handle(ex["topic"], json.dumps(ex["payload"]).encode())
    (light,) = r.entities()
    r.handle("zigbee2mqtt/bulb", json.dumps(ex["example_state_payload"]).encode())
    # 215 of 254 → 85 %; 325 mireds → 3077 K.
    assert r.state(light.id).values == {"state": "on", "brightness": 85, "color_temp": 3077}
    # Availability comes from the bridge's JSON state through the value template.
    assert r.is_available(light.id) is None
    r.handle("zigbee2mqtt/bridge/state", b'{"state": "offline"}')
    assert r.is_available(light.id) is False
    r.handle("zigbee2mqtt/bridge/state", b'{"state": "online"}')
    assert r.is_available(light.id) is True


def test_removal_and_replacement_by_topic() -> None:
    ex = reference("binary_sensor_motion_ha_docs")
    r = Registry()
    r.handle(ex["topic"], json.dumps(ex["payload"]).encode())
    assert [e.id for e in r.entities()] == ["binary_sensor.garden"]
    assert "homeassistant/binary_sensor/garden/state" in r.subscriptions()
    assert r.handle(ex["topic"], b"")
    assert r.entities() == []
    assert "homeassistant/binary_sensor/garden/state" not in r.subscriptions()


def test_hostile_discovery_is_skipped_and_never_subscribes_wildcards(caplog: pytest.LogCaptureFixture) -> None:
    r = Registry()
    assert not r.handle("homeassistant/light/x/config", b"{not json")
    assert "skipping discovery message" in caplog.text
    r.handle("homeassistant/switch/evil/config", json.dumps({"name": "Evil", "cmd_t": "#", "stat_t": "a/+/b"}).encode())
    subs = r.subscriptions()
    assert "a/+/b" not in subs
    assert all("#" not in s for s in subs)
    with pytest.raises(ToolError):
        check_command("#", b"ON", r.command_topics())


def test_config_listed_devices_and_aliases() -> None:
    settings = settings_from_dict({"home": {
        "devices": [{"id": "light.porch", "name": "Porch light", "area": "Outside", "aliases": ["front light"],
                     "command_topic": "porch/set", "state_topic": "porch/state", "payload_on": "1", "payload_off": "0"}],
        "entities": [{"id": "light.kitchen", "aliases": ["big light"], "area": "Kitchen"}],
    }})
    r = Registry(settings.home)
    r.handle("homeassistant/light/kitchen/config", b'{"name": "Kitchen", "cmd_t": "k/set"}')
    assert [e.id for e in r.find("front light")] == ["light.porch"]
    assert [e.id for e in r.find("Big Light")] == ["light.kitchen"]
    assert [e.id for e in r.in_area("kitchen", "light")] == ["light.kitchen"]
    r.handle("porch/state", b"1")
    assert r.state("light.porch").values["state"] == "on"
    assert commands.build(r.get("light.porch"), "turn_off").publishes == (("porch/set", b"0"),)  # type: ignore[arg-type]


def test_command_payload_conventions(registry: Registry) -> None:
    kitchen = registry.get("light.kitchen_light")
    lamp = registry.get("light.living_room_lamp")
    assert kitchen and lamp
    cmd = commands.build(kitchen, "brightness", 50)
    assert cmd.publishes == (("zigbee2mqtt/kitchen_light/set", b'{"state": "ON", "brightness": 127}'),)
    assert 50 in cmd.expect["brightness"]
    # 2700 K = 370 mireds, inside the bulb's 250..454.
    assert json.loads(commands.build(kitchen, "color_temp", 2700).publishes[0][1])["color_temp"] == 370
    assert commands.build(lamp, "brightness", 40).publishes == (("esphome/livingroom_lamp/brightness/set", b"40"),)
    assert commands.build(lamp, "brightness", 0).publishes == (("esphome/livingroom_lamp/set", b"OFF"),)
    thermostat = registry.get("climate.thermostat")
    assert thermostat
    assert commands.build(thermostat, "temperature", 21).publishes == (("home/thermostat/target/set", b"21"),)
    with pytest.raises(ToolError) as info:
        commands.build(thermostat, "temperature", 35)
    assert info.value.code == "tool-range"
    lock = registry.get("lock.front_door")
    assert lock and commands.build(lock, "unlock").publishes == (("home/front_door/set", b"UNLOCK"),)
    with pytest.raises(ToolError):
        commands.build(lock, "turn_on")


def test_templates_are_a_safe_subset() -> None:
    assert render_value("{{ value_json.state }}", '{"state": "ON"}') == "ON"
    assert render_value("{{ value_json['a'][\"b\"] | int }}", '{"a": {"b": "7"}}') == 7
    assert render_value("{{ value_json.missing }}", "{}") is MISSING
    assert render_value("{% for x in y %}{{ x }}{% endfor %}", "1") is MISSING
    assert render_value("{{ value.__class__ }}", "1") is MISSING
    assert render_command("{{ value }}", 5) == "5"
    assert render_command("{{ {0:'off'}[value] }}", 0) is None


def test_confirmation_policy() -> None:
    policy = ConfirmPolicy(frozenset({"switch.oven"}))
    assert policy.needs_confirmation("lock.front", "lock", "unlock", None)
    assert not policy.needs_confirmation("lock.front", "lock", "lock", None)
    assert policy.needs_confirmation("cover.garage", "cover", "open", "garage")
    assert not policy.needs_confirmation("cover.garage", "cover", "close", "garage")
    assert not policy.needs_confirmation("cover.blinds", "cover", "open", "blind")
    assert policy.needs_confirmation("switch.oven", "switch", "turn_on", None)
    assert policy.needs_confirmation("alarm.home", "alarm_control_panel", "disarm", None)


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(12)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert delays[6] > delays[0]
    assert max(delays[8:]) <= 30.0 and min(delays[8:]) >= 15.0
    assert len({round(backoff_delay(10, 0.5, 30.0, rng), 6) for _ in range(10)}) > 1  # jittered


def test_home_config_errors_name_the_key() -> None:
    from device.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        settings_from_dict({"home": {"devices": [{"id": "toaster.one", "name": "Toaster"}]}})
    assert "home.devices[0]" in info.value.message or "home.devices" in info.value.message
    with pytest.raises(ConfigError):
        settings_from_dict({"home": {"devices": [{"id": "light.x", "name": "X", "colour": "red"}]}})
