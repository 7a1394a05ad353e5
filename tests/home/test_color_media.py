"""Light colour and media players over a real mosquitto, against the evaluation home's devices.

The publishes are judged by the e2e bench's own scorer (`payload_matches` against what
`device/bench/e2e_home.py` says Home Assistant would send), so the tools and `voxhome bench e2e`
agree on what a right colour or media command is; confirmation comes back from the virtual home.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from device.bench.e2e_home import COLORS, Device, build_home
from device.bench.e2e_score import payload_matches
from device.errors import ToolError
from device.settings import settings_from_dict
from device.sim.broker import Mosquitto
from device.tools import colors, commands
from device.tools.commands import spoken
from device.tools.registry import Registry
from device.tools.session import HomeSession
from device.tools.templates import render_fields
from device.tools.tools import HomeTools, tool_specs
from tests.home.conftest import SimHome, demo_registry, run_async, settings_for
from tests.home.test_live import Observer, call

E2E_HOME = Path(__file__).resolve().parents[2] / "device" / "bench" / "e2e_home.json"
DEVICES = {d.id: d for d in build_home()}


def _commands_seen(observer: Observer, registry: Registry) -> list[tuple[str, str]]:
    """Every publish onto a command topic of the home (what the bench records)."""
    allowed = registry.command_topics()
    with observer.lock:
        return [(t, p.decode()) for t, p, _props, _retain in observer.messages if t in allowed]


def _matches(expected: list[dict[str, Any]], seen: list[tuple[str, str]]) -> bool:
    return len(seen) == len(expected) and all(
        t == want["topic"] and payload_matches(want["payload"], p) for (t, p), want in zip(seen, expected, strict=True)
    )


async def _settle(observer: Observer, registry: Registry, count: int) -> list[tuple[str, str]]:
    for _ in range(50):
        seen = _commands_seen(observer, registry)
        if len(seen) >= count:
            break
        await asyncio.sleep(0.02)
    return _commands_seen(observer, registry)


@run_async
async def test_every_colour_on_every_colour_light_is_what_the_bench_expects(mosquitto: Mosquitto) -> None:
    sim = SimHome(mosquitto, "--discovery", str(E2E_HOME))
    observer = Observer(mosquitto)
    try:
        async with HomeSession(settings_for(mosquitto)) as home:
            lights = [d for d in DEVICES.values() if d.component == "light" and "color" in d.features]
            assert {d.style for d in lights} == {"z2m", "ha"}  # the JSON schema (xy) and the default one (rgb)
            for device in lights:
                for name in COLORS:
                    before = len(_commands_seen(observer, home.registry))
                    result = await home.tools.execute(call("set_color", entity=device.name, color=name))
                    assert (result.status, result.message) == ("ok", f"Set the {spoken(device.name)} to {name}."), (device.id, name, result)
                    seen = (await _settle(observer, home.registry, before + 1))[before:]
                    assert _matches(device.color(name), seen), (device.id, name, seen)
                    # Confirmed by the colour the light reports back, not only by 'on'.
                    hue = home.registry.state(device.id).values["hue"]
                    assert abs((hue - COLORS[name] + 180) % 360 - 180) <= 15, (device.id, name, hue)
    finally:
        observer.close()
        sim.stop()


@run_async
async def test_rgb_whites_areas_and_refusals(mosquitto: Mosquitto) -> None:
    sim = SimHome(mosquitto, "--discovery", str(E2E_HOME))
    observer = Observer(mosquitto)
    try:
        async with HomeSession(settings_for(mosquitto)) as home:
            tools, registry = home.tools, home.registry
            result = await tools.execute(call("set_color", entity="light.tv_backlight", rgb=[0, 0, 255]))
            assert (result.status, result.message) == ("ok", "Changed the colour of the TV backlight.")
            assert registry.state("light.tv_backlight").values["hue"] == 240
            # A white is a colour temperature where the light has one, rgb where it hasn't.
            result = await tools.execute(call("set_color", entity="ceiling light", color="Warm White"))
            assert result.status == "ok"
            result = await tools.execute(call("set_color", entity="night light", color="warm white"))
            assert result.status == "ok" and 20 <= registry.state("light.night_light").values["hue"] <= 40
            result = await tools.execute(call("set_color", entity="bedroom light", color="daylight"))
            assert result.status == "ok"
            seen = await _settle(observer, registry, 4)
            assert seen[0] == ("home/tv_backlight/rgb/set", "0,0,255")
            assert json.loads(seen[1][1]) == {"state": "ON", "color_temp": 370}  # 2700 K in mireds
            assert seen[2][0] == "home/night_light/rgb/set" and seen[2][1].startswith("255,")
            assert _matches(DEVICES["light.bedroom_light"].color_temp(5000), seen[3:])  # the bench's 'daylight'
            # 'What colour is the desk lamp?' from the colour it reports.
            await tools.execute(call("set_color", entity="desk lamp", color="pink"))
            result = await tools.execute(call("get_state", entity="desk lamp"))
            assert result.message == "The desk lamp is on, pink."
            # 'Make the living room blue': the colour lights change, the others are skipped.
            result = await tools.execute(call("set_color", area="living room", domain="light", color="blue"))
            assert result.status == "ok"
            assert {i["entity"] for i in result.data["entities"]} == {"light.ceiling_light", "light.tv_backlight"}
            assert set(result.data["skipped"]) == {"light.floor_lamp", "light.living_room_lamp"}
            await asyncio.sleep(0.2)
            count = len(_commands_seen(observer, registry))
            # Bad input: a clear error and nothing published.
            bad = [
                (call("set_color", entity="desk lamp", color="mauve"), "unknown-color", "mauve"),
                (call("set_color", entity="desk lamp", rgb=[256, 0, 0]), "tool-arguments", "255"),
                (call("set_color", entity="desk lamp", rgb=[1, 2]), "tool-arguments", ""),
                (call("set_color", entity="desk lamp", color="red", rgb=[1, 2, 3]), "tool-arguments", ""),
                (call("set_color", entity="desk lamp"), "tool-arguments", ""),
                (call("set_color", entity="kitchen light", color="red"), "tool-unsupported", "the kitchen light can't change colour"),
                (call("set_color", entity="porch light", color="red"), "tool-unsupported", "the porch light can't change colour"),
                (call("set_color", area="garage", domain="light", color="red"), "tool-unsupported", "can't change colour"),
            ]
            for tool_call, code, text in bad:
                result = await tools.execute(tool_call)
                assert (result.status, result.data["code"]) == ("error", code), (tool_call, result)
                assert text in result.message
            await asyncio.sleep(0.3)
            assert len(_commands_seen(observer, registry)) == count
    finally:
        observer.close()
        sim.stop()


@run_async
async def test_media_players_take_each_verb_and_report_their_state(mosquitto: Mosquitto) -> None:
    sim = SimHome(mosquitto, "--discovery", str(E2E_HOME))
    observer = Observer(mosquitto)
    try:
        async with HomeSession(settings_for(mosquitto)) as home:
            radio: Device = DEVICES["media_player.kitchen_radio"]
            steps = [("media_pause", "pause", None, "ok", "paused"), ("media_play", "play", None, "ok", "playing"),
                     ("media_next", "next", None, "ok", "playing"), ("media_previous", "previous", None, "ok", "playing"),
                     # This convention has no volume state topic: sent, but nothing can confirm it.
                     ("set_media_volume", "volume", 40, "unconfirmed", "playing")]
            for tool, verb, volume, status, state in steps:
                before = len(_commands_seen(observer, home.registry))
                args: dict[str, Any] = {"entity": "kitchen radio"} | ({"volume": volume} if volume is not None else {})
                result = await home.tools.execute(call(tool, **args))
                assert result.status == status, (tool, result)
                seen = (await _settle(observer, home.registry, before + 1))[before:]
                assert _matches(radio.media(verb, volume), seen), (verb, seen)
                assert home.registry.state(radio.id).values["state"] == state
            result = await home.tools.execute(call("media_pause", area="kitchen"))
            assert (result.status, result.message) == ("ok", "Paused the kitchen radio.")
            # 'Is the radio playing?' can be answered from the state topic.
            result = await home.tools.execute(call("get_state", entity="kitchen radio"))
            assert result.message == "The kitchen radio is paused."
            count = len(_commands_seen(observer, home.registry))
            for tool_call, code in [(call("set_media_volume", entity="kitchen radio", volume=101), "tool-arguments"),
                                    (call("media_pause", entity="kitchen light"), "tool-unsupported"),
                                    (call("media_pause", entity="jukebox"), "unknown-entity")]:
                result = await home.tools.execute(tool_call)
                assert (result.status, result.data["code"]) == ("error", code), result
            await asyncio.sleep(0.3)
            assert len(_commands_seen(observer, home.registry)) == count
    finally:
        observer.close()
        sim.stop()


def _other_shapes() -> dict[str, Any]:
    """Lights and a player in the shapes the evaluation home doesn't use."""
    dev = {"identifiers": ["shapes"], "name": "Shapes", "suggested_area": "Studio"}
    return {"configs": [
        {"topic": "homeassistant/light/hs_bulb/config", "payload": {
            "name": "HS bulb", "schema": "json", "command_topic": "studio/hs/set", "state_topic": "studio/hs",
            "supported_color_modes": ["hs"], "device": dev}},
        {"topic": "homeassistant/light/legacy_rgb/config", "payload": {
            "name": "Legacy strip", "schema": "json", "cmd_t": "studio/legacy/set", "stat_t": "studio/legacy", "rgb": True, "device": dev}},
        {"topic": "homeassistant/light/hs_topic/config", "payload": {
            "name": "HS lamp", "command_topic": "studio/hsl/set", "state_topic": "studio/hsl/state",
            "hs_command_topic": "studio/hsl/hs/set", "hs_state_topic": "studio/hsl/hs", "device": dev}},
        {"topic": "homeassistant/light/hex_rgb/config", "payload": {
            "name": "Hex lamp", "command_topic": "studio/hex/set", "rgb_command_topic": "studio/hex/rgb/set",
            "rgb_command_template": "{{ '#%02x%02x%02x' | format(red, green, blue) }}", "device": dev}},
        {"topic": "homeassistant/light/odd_template/config", "payload": {
            "name": "Odd lamp", "command_topic": "studio/odd/set", "rgb_command_topic": "studio/odd/rgb/set",
            "rgb_command_template": "{{ red * 2 }}", "device": dev}},
        {"topic": "homeassistant/media_player/tv/config", "payload": {
            "name": "TV", "state_topic": "studio/tv/state", "play_topic": "studio/tv/play", "pause_topic": "studio/tv/pause",
            "volumeset_topic": "studio/tv/volume", "volume_state_topic": "studio/tv/volume/state",
            "payload_pause": "PAUSE", "device": dev}},
    ], "initial": []}


@run_async
async def test_other_light_schemas_and_a_player_missing_a_verb(mosquitto: Mosquitto, tmp_path: Path) -> None:
    home_file = tmp_path / "shapes.json"
    home_file.write_text(json.dumps(_other_shapes()))
    sim = SimHome(mosquitto, "--discovery", str(home_file))
    observer = Observer(mosquitto)
    try:
        async with HomeSession(settings_for(mosquitto)) as home:
            tools, registry = home.tools, home.registry
            for entity, color, status in [("HS bulb", "purple", "ok"), ("Legacy strip", "green", "ok"),
                                          ("HS lamp", "cyan", "ok"), ("Hex lamp", "orange", "unconfirmed")]:
                result = await tools.execute(call("set_color", entity=entity, color=color))
                assert result.status == status, (entity, result)
            assert registry.state("light.hs_bulb").values["hue"] == 280
            assert registry.state("light.legacy_strip").values["hue"] == 120
            assert registry.state("light.hs_lamp").values == {"hue": 180, "saturation": 100, "state": "on"}
            seen = dict(await _settle(observer, registry, 4))
            assert json.loads(seen["studio/hs/set"]) == {"state": "ON", "color": {"h": 280, "s": 100}}
            assert json.loads(seen["studio/legacy/set"]) == {"state": "ON", "color": {"r": 0, "g": 255, "b": 0}}
            assert seen["studio/hsl/hs/set"] == "180,100"
            assert seen["studio/hex/rgb/set"] == "#ff8000"
            result = await tools.execute(call("set_color", entity="Odd lamp", color="red"))
            assert (result.status, result.data["code"]) == ("error", "tool-template")
            # The player: its own payload, its volume confirmed, and no 'next' topic → a clear error.
            result = await tools.execute(call("media_pause", entity="TV"))
            assert result.status == "ok" and registry.state("media_player.tv").values["state"] == "paused"
            result = await tools.execute(call("set_media_volume", entity="TV", volume=35))
            assert (result.status, result.message) == ("ok", "Set the TV volume to 35 percent.")
            assert registry.state("media_player.tv").values["volume"] == 35
            result = await tools.execute(call("get_state", entity="TV"))
            assert result.message == "The TV is paused at volume 35 percent."
            count = len(_commands_seen(observer, registry))
            for verb in ("media_next", "media_previous"):
                result = await tools.execute(call(verb, entity="TV"))
                assert (result.status, result.data["code"]) == ("error", "tool-unsupported"), result
                assert result.message in ("the TV can't skip to the next track", "the TV can't go back a track")
            await asyncio.sleep(0.3)
            assert len(_commands_seen(observer, registry)) == count
            assert observer.on("studio/tv/pause") == [b"PAUSE"]
    finally:
        observer.close()
        sim.stop()


def test_specs_offer_colour_and_media_only_where_the_home_has_them() -> None:
    demo = {s.name: s for s in tool_specs(demo_registry())}
    assert not {"media_play", "media_pause", "set_media_volume"} & demo.keys()
    registry = Registry()
    for c in json.loads(E2E_HOME.read_text())["configs"]:
        registry.handle(c["topic"], json.dumps(c["payload"]).encode())
    specs = {s.name: s for s in HomeTools(registry, link=None).specs()}  # type: ignore[arg-type]
    assert {"set_color", "media_play", "media_pause", "media_next", "media_previous", "set_media_volume"} <= specs.keys()
    color = specs["set_color"].parameters
    assert color["oneOf"] == [{"required": ["color"]}, {"required": ["rgb"]}]
    assert color["properties"]["rgb"]["items"] == {"type": "integer", "minimum": 0, "maximum": 255}
    assert "media_player.kitchen_radio" in specs["media_pause"].description
    # The players' verb topics are on the publish allow-list; nothing else of theirs is.
    assert {"media/kitchen_radio/pause", "media/kitchen_radio/volume"} <= registry.command_topics()
    assert "media/kitchen_radio/state" not in registry.command_topics()


@pytest.mark.parametrize(("text", "expected"), [("Red", "red"), ("the warm-white", "warm white"), ("blue colour", "blue"), ("grey", "white")])
def test_colour_names(text: str, expected: str) -> None:
    assert colors.color_named(text).name == expected


def test_colour_conversions_round_trip() -> None:
    for color in colors.COLORS.values():
        if color.kelvin is None and color.saturation >= 15:
            back = colors.state_from_parts("xy", list(color.xy))
            assert abs((back["hue"] - color.hue + 180) % 360 - 180) <= 3, color
            assert colors.state_from_text("rgb", ",".join(map(str, color.rgb)))["hue"] in colors.hue_window(color.hue, 2)
    assert colors.state_from_text("rgb", "300,0,0") == {} and colors.state_from_text("xy", "nan,0.3") == {}
    assert render_fields("{{ red }}/{{ green }}/{{ blue }}", {"red": 1, "green": 2, "blue": 3}, "") == "1/2/3"
    assert render_fields("{{ red }}{% if x %}", {"red": 1}, "") is None
    assert render_fields("{{ white }}", {"red": 1}, "") is None


def test_a_media_player_listed_in_the_config() -> None:
    settings = settings_from_dict({"home": {"devices": [{
        "id": "media_player.den_tv", "name": "Den TV", "area": "Den", "state_topic": "den/tv/state",
        "config": json.dumps({"pause_topic": "den/tv/pause", "play_topic": "den/tv/play", "volumeset_topic": "den/tv/vol"}),
    }]}})
    registry = Registry(settings.home)
    tv = registry.get("media_player.den_tv")
    assert tv is not None and {"den/tv/pause", "den/tv/play", "den/tv/vol"} <= registry.command_topics()
    assert commands.build(tv, "pause").publishes == (("den/tv/pause", b"pause"),)
    assert commands.build(tv, "volume", 20).publishes == (("den/tv/vol", b"20"),)
    registry.handle("den/tv/state", b"Playing")
    assert registry.state(tv.id).values["state"] == "playing"
    with pytest.raises(ToolError) as info:
        commands.build(tv, "next")
    assert (info.value.code, info.value.message) == ("tool-unsupported", "the den TV can't skip to the next track")
