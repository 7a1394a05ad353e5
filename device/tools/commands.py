"""What to publish for an action on an entity, by that entity's own conventions. Pure.

Every command sets an absolute value (never a toggle): QoS 1 may deliver a message twice, and
"ON" twice is still on. A `Command` also says which state would confirm it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from device.errors import ToolError
from device.tools.colors import Color, hue_window
from device.tools.registry import Entity
from device.tools.templates import render_command, render_fields


@dataclass(frozen=True, slots=True)
class Command:
    publishes: tuple[tuple[str, bytes], ...]
    expect: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """attribute → acceptable values; empty when the entity can't report it (no state topic)."""
    stateless: bool = False
    """Nothing could confirm it (a scene, 'next track'): sent is done."""


def unsupported(entity: Entity, what: str) -> ToolError:
    return ToolError("tool-unsupported", f"{entity.name} can't {what}")


def spoken(name: str) -> str:
    """'Kitchen light' reads 'the kitchen light' mid-sentence; acronyms ('TV') stay."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def build(entity: Entity, action: str, value: Any = None) -> Command:
    match entity.component:
        case "light":
            return _light(entity, action, value)
        case "switch":
            return _on_off(entity, action)
        case "fan":
            return _fan(entity, action, value)
        case "lock":
            return _lock(entity, action)
        case "cover":
            return _cover(entity, action, value)
        case "climate":
            return _climate(entity, action, value)
        case "media_player":
            return _media(entity, action, value)
        case "scene":
            if action != "activate" and action != "turn_on":
                raise unsupported(entity, action.replace("_", " "))
            return Command(((_topic(entity, "command_topic", "be activated"), _s(entity.config.get("payload_on", "ON"))),), stateless=True)
    raise unsupported(entity, action.replace("_", " "))


def _topic(entity: Entity, key: str, what: str) -> str:
    topic = entity.config.get(key)
    if not isinstance(topic, str) or not topic:
        raise unsupported(entity, what)
    return topic


def _s(value: Any) -> bytes:
    return str(value).encode("utf-8")


def _has_state(entity: Entity, key: str = "state_topic") -> bool:
    return isinstance(entity.config.get(key), str)


def _fill(entity: Entity, template_key: str, value: Any) -> bytes:
    template = entity.config.get(template_key)
    rendered = render_command(template if isinstance(template, str) else None, value)
    if rendered is None:
        raise ToolError("tool-template", f"{entity.name} uses a command template voxhome can't fill")
    return rendered.encode("utf-8")


def _on_off(entity: Entity, action: str) -> Command:
    if action not in ("turn_on", "turn_off"):
        raise unsupported(entity, action.replace("_", " "))
    on = action == "turn_on"
    payload = entity.config.get("payload_on" if on else "payload_off", "ON" if on else "OFF")
    expect = {"state": ("on" if on else "off",)} if _has_state(entity) else {}
    return Command(((_topic(entity, "command_topic", "be switched"), _s(payload)),), expect)


def _light(entity: Entity, action: str, value: Any) -> Command:
    if action == "color":
        return _light_color(entity, value)
    scale = entity.config.get("brightness_scale", 255)
    scale = scale if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0 else 255
    if entity.config.get("schema") == "json":
        body: dict[str, Any]
        if action in ("turn_on", "turn_off"):
            body = {"state": "ON" if action == "turn_on" else "OFF"}
            expect: dict[str, tuple[Any, ...]] = {"state": ("on" if action == "turn_on" else "off",)}
        elif action == "brightness":
            if value == 0:
                return _light(entity, "turn_off", None)
            body = {"state": "ON", "brightness": max(1, round(value * scale / 100))}
            expect = {"state": ("on",), "brightness": tuple(range(max(0, value - 1), value + 2))}
        elif action == "color_temp":
            body = {"state": "ON", "color_temp": _color_temp_value(entity, value)}
            expect = {"state": ("on",)}
        else:
            raise unsupported(entity, action.replace("_", " "))
        topic = _topic(entity, "command_topic", "be switched")
        return Command(((topic, json.dumps(body).encode()),), expect if _has_state(entity) else {})
    if action in ("turn_on", "turn_off"):
        return _on_off(entity, action)
    if action == "brightness":
        if value == 0:
            return _on_off(entity, "turn_off")
        topic = _topic(entity, "brightness_command_topic", "be dimmed")
        payload = _fill(entity, "brightness_command_template", max(1, round(value * scale / 100)))
        expect = {"brightness": tuple(range(max(0, value - 1), value + 2))} if _has_state(entity, "brightness_state_topic") else {}
        return Command(((topic, payload),), expect)
    if action == "color_temp":
        topic = _topic(entity, "color_temp_command_topic", "change its color temperature")
        payload = _fill(entity, "color_temp_command_template", _color_temp_value(entity, value))
        return Command(((topic, payload),), {})
    raise unsupported(entity, action.replace("_", " "))


def _light_color(entity: Entity, color: Color) -> Command:
    """By the light's schema and colour modes, as Home Assistant's MQTT light would publish it."""
    c = entity.config
    cant = ToolError("tool-unsupported", f"the {spoken(entity.name)} can't change colour")
    if c.get("schema") == "json":
        modes = c.get("supported_color_modes")
        listed = modes if isinstance(modes, list) else [m for m in ("hs", "rgb", "xy", "color_temp") if c.get(m) is True]
        if color.kelvin is not None and "color_temp" in listed:
            return _light(entity, "color_temp", color.kelvin)
        r, g, b = color.rgb
        x, y = color.xy
        if "hs" in listed:
            body: dict[str, Any] = {"h": _num(color.hue), "s": _num(color.saturation)}
        elif any(m in listed for m in ("rgb", "rgbw", "rgbww")):
            body = {"r": r, "g": g, "b": b}
        elif "xy" in listed:
            body = {"x": x, "y": y}
        else:
            raise cant
        topic = _topic(entity, "command_topic", "change colour")
        payload = json.dumps({"state": "ON", "color": body}).encode()
        return Command(((topic, payload),), {"state": ("on",), **_color_expect(color)} if _has_state(entity) else {})
    if color.kelvin is not None and isinstance(c.get("color_temp_command_topic"), str):
        return _light(entity, "color_temp", color.kelvin)
    r, g, b = color.rgb
    x, y = color.xy
    forms: tuple[tuple[str, dict[str, Any], str], ...] = (
        ("rgb", {"red": r, "green": g, "blue": b}, "{{ red }},{{ green }},{{ blue }}"),
        ("hs", {"hue": _num(color.hue), "sat": _num(color.saturation)}, "{{ hue }},{{ sat }}"),
        ("xy", {"x": x, "y": y}, "{{ x }},{{ y }}"),
    )
    for kind, variables, default in forms:
        found = c.get(f"{kind}_command_topic")
        if not isinstance(found, str) or not found:
            continue
        template = c.get(f"{kind}_command_template")
        rendered = render_fields(template if isinstance(template, str) else None, variables, default)
        if rendered is None:
            raise ToolError("tool-template", f"{entity.name} uses a colour template voxhome can't fill")
        expect = _color_expect(color) if _has_state(entity, f"{kind}_state_topic") else {}
        return Command(((found, rendered.encode()),), expect)
    raise cant


def _color_expect(color: Color) -> dict[str, tuple[Any, ...]]:
    # A pale colour's hue means little (and white has none): confirm those by saturation.
    if color.saturation < 15:
        return {"saturation": tuple(range(0, round(color.saturation) + 16))}
    return {"hue": hue_window(color.hue)}


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def _color_temp_value(entity: Entity, kelvin: int) -> int:
    if entity.config.get("color_temp_kelvin") is True:
        return int(kelvin)
    mireds = round(1_000_000 / kelvin)
    lo, hi = entity.config.get("min_mireds", 153), entity.config.get("max_mireds", 500)
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        mireds = max(int(lo), min(int(hi), mireds))
    return mireds


def _lock(entity: Entity, action: str) -> Command:
    if action not in ("lock", "unlock"):
        raise unsupported(entity, action.replace("_", " "))
    payload = entity.config.get(f"payload_{action}", action.upper())
    expect = {"state": (f"{action}ed",)} if _has_state(entity) else {}
    return Command(((_topic(entity, "command_topic", action), _s(payload)),), expect)


def _cover(entity: Entity, action: str, value: Any) -> Command:
    if action == "position":
        topic = _topic(entity, "set_position_topic", "move to a position")
        lo = entity.config.get("position_closed", 0)
        hi = entity.config.get("position_open", 100)
        raw = round(lo + (hi - lo) * value / 100) if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) else value
        payload = _fill(entity, "set_position_template", raw)
        position: dict[str, tuple[Any, ...]] = {"position": (value,)} if _has_state(entity, "position_topic") else {}
        return Command(((topic, payload),), position)
    keys: dict[str, tuple[str, str, tuple[Any, ...]]] = {"open": ("payload_open", "OPEN", ("open", "opening")), "close": ("payload_close", "CLOSE", ("closed", "closing")), "stop": ("payload_stop", "STOP", ())}
    if action not in keys:
        raise unsupported(entity, action)
    key, default, states = keys[action]
    payload = entity.config.get(key, default)
    if payload is None:
        raise unsupported(entity, action)
    expect = {"state": states} if states and _has_state(entity) else {}
    return Command(((_topic(entity, "command_topic", action), _s(payload)),), expect)


def _climate(entity: Entity, action: str, value: Any) -> Command:
    if action == "temperature":
        lo, hi = _float(entity.config.get("min_temp"), 7.0), _float(entity.config.get("max_temp"), 35.0)
        if not lo <= value <= hi:
            raise ToolError("tool-range", f"{entity.name} takes {lo:g} to {hi:g} degrees, not {value:g}")
        topic = _topic(entity, "temperature_command_topic", "set a temperature")
        number = int(value) if float(value).is_integer() else value
        payload = _fill(entity, "temperature_command_template", number)
        expect = {"temperature": (float(value),)} if _has_state(entity, "temperature_state_topic") else {}
        return Command(((topic, payload),), expect)
    if action == "hvac_mode":
        modes = entity.config.get("modes", ["auto", "off", "cool", "heat", "dry", "fan_only"])
        if isinstance(modes, list) and value not in modes:
            raise ToolError("tool-range", f"{entity.name} has no mode {value!r}")
        topic = _topic(entity, "mode_command_topic", "change mode")
        expect = {"mode": (value,)} if _has_state(entity, "mode_state_topic") else {}
        return Command(((topic, _fill(entity, "mode_command_template", value)),), expect)
    if action in ("turn_on", "turn_off"):
        mode = "off" if action == "turn_off" else _on_mode(entity)
        return _climate(entity, "hvac_mode", mode)
    raise unsupported(entity, action.replace("_", " "))


def _on_mode(entity: Entity) -> str:
    modes = entity.config.get("modes", ["auto"])
    # 'Turn the heating on' means heat where the device heats; auto and cool only otherwise.
    for mode in ("heat", "heat_cool", "auto", "cool"):
        if isinstance(modes, list) and mode in modes:
            return mode
    raise unsupported(entity, "be turned on")


def _fan(entity: Entity, action: str, value: Any) -> Command:
    if action in ("turn_on", "turn_off"):
        return _on_off(entity, action)
    if action == "percentage":
        if value == 0:
            return _on_off(entity, "turn_off")
        topic = _topic(entity, "percentage_command_topic", "change speed")
        lo, hi = entity.config.get("speed_range_min", 1), entity.config.get("speed_range_max", 100)
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise unsupported(entity, "change speed")
        raw = max(lo, math.ceil(value * hi / 100))
        expect = {"percentage": (round(100 * raw / hi),)} if _has_state(entity, "percentage_state_topic") else {}
        return Command(((topic, _fill(entity, "percentage_command_template", raw)),), expect)
    if action == "preset":
        presets = entity.config.get("preset_modes", [])
        if not isinstance(presets, list) or value not in presets:
            raise ToolError("tool-range", f"{entity.name} has no preset {value!r}")
        topic = _topic(entity, "preset_mode_command_topic", "change preset")
        expect = {"preset_mode": (value,)} if _has_state(entity, "preset_mode_state_topic") else {}
        return Command(((topic, _fill(entity, "preset_mode_command_template", value)),), expect)
    raise unsupported(entity, action.replace("_", " "))


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


# verb → (the discovery key of its topic, what it does when said, the state that confirms it)
_MEDIA: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "play": ("play_topic", "play", ("playing",)),
    "pause": ("pause_topic", "pause", ("paused",)),
    "next": ("next_topic", "skip to the next track", ()),
    "previous": ("previous_topic", "go back a track", ()),
}


def _media(entity: Entity, action: str, value: Any) -> Command:
    """The community mqtt_media_player shape: one command topic per verb, the verb as payload."""
    if action == "volume":
        topic = entity.config.get("volumeset_topic")
        if not isinstance(topic, str) or not topic:
            raise ToolError("tool-unsupported", f"the {spoken(entity.name)} can't set its volume")
        volume: dict[str, tuple[Any, ...]] = {"volume": tuple(range(max(0, value - 1), value + 2))} if _has_state(entity, "volume_state_topic") else {}
        return Command(((topic, _fill(entity, "volumeset_template", value)),), volume)
    if action not in _MEDIA:
        raise unsupported(entity, action.replace("_", " "))
    key, what, states = _MEDIA[action]
    topic = entity.config.get(key)
    if not isinstance(topic, str) or not topic:
        raise ToolError("tool-unsupported", f"the {spoken(entity.name)} can't {what}")
    payload = entity.config.get(f"payload_{action}", action)
    expect = {"state": states} if states and _has_state(entity) else {}
    return Command(((topic, _s(payload)),), expect, stateless=not states)
