"""Read an entity's state from the messages on its topics. Pure.

Each component reports differently (plain payloads, JSON, templates, per-attribute topics); this
module turns one message into a small dict of normalised attributes:

* ``state``: 'on'/'off' (light, switch, fan, binary_sensor), 'locked'/'unlocked'/'locking'/'unlocking'/
  'jammed' (lock), 'open'/'closed'/'opening'/'closing'/'stopped' (cover), or the raw value (sensor);
* ``brightness`` (percent 0..100), ``color_temp`` (kelvin), ``position`` (0..100),
  ``temperature``/``current_temperature`` (degrees), ``mode``, ``percentage``, ``preset_mode``;
* ``hue`` (degrees) and ``saturation`` (percent) of a colour light, however it reports (hs, rgb, xy);
* media players: ``state`` ('playing', 'paused', 'idle', 'stopped', 'off', 'on' or the raw value)
  and ``volume`` (percent).
"""

from __future__ import annotations

import json
from typing import Any

from device.tools import colors
from device.tools.templates import MISSING, render_value

# (attribute, the topic key, the template key) per component.
_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "light": (
        ("state", "state_topic", "state_value_template"),
        ("brightness", "brightness_state_topic", "brightness_value_template"),
        ("color_temp", "color_temp_state_topic", "color_temp_value_template"),
        ("rgb", "rgb_state_topic", "rgb_value_template"),
        ("hs", "hs_state_topic", "hs_value_template"),
        ("xy", "xy_state_topic", "xy_value_template"),
    ),
    "switch": (("state", "state_topic", "value_template"),),
    "binary_sensor": (("state", "state_topic", "value_template"),),
    "sensor": (("state", "state_topic", "value_template"),),
    "lock": (("state", "state_topic", "value_template"),),
    "cover": (
        ("state", "state_topic", "value_template"),
        ("position", "position_topic", "position_template"),
    ),
    "fan": (
        ("state", "state_topic", "state_value_template"),
        ("percentage", "percentage_state_topic", "percentage_value_template"),
        ("preset_mode", "preset_mode_state_topic", "preset_mode_value_template"),
    ),
    "climate": (
        ("current_temperature", "current_temperature_topic", "current_temperature_template"),
        ("temperature", "temperature_state_topic", "temperature_state_template"),
        ("mode", "mode_state_topic", "mode_state_template"),
        ("preset_mode", "preset_mode_state_topic", "preset_mode_value_template"),
    ),
    "scene": (),
    "media_player": (
        ("state", "state_topic", "value_template"),
        ("volume", "volume_state_topic", "volume_value_template"),
    ),
}
_MEDIA_STATES = {"playing": "playing", "play": "playing", "paused": "paused", "pause": "paused", "idle": "idle",
                 "stopped": "stopped", "stop": "stopped", "off": "off", "on": "on", "standby": "off", "buffering": "playing"}


def state_topics(component: str, config: dict[str, Any]) -> set[str]:
    return {t for _, key, _ in _FIELDS.get(component, ()) if isinstance(t := config.get(key), str)}


def interpret(component: str, config: dict[str, Any], topic: str, payload: bytes) -> dict[str, Any]:
    """The attributes this message on `topic` sets; empty when it says nothing we understand."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    if component == "light" and config.get("schema") == "json":
        return _json_light(config, topic, text) if topic == config.get("state_topic") else {}
    out: dict[str, Any] = {}
    for attr, topic_key, template_key in _FIELDS.get(component, ()):
        if config.get(topic_key) != topic:
            continue
        template = config.get(template_key)
        if not isinstance(template, str):
            template = None
        value = render_value(template, text)
        if value is MISSING:
            continue
        if attr in ("rgb", "hs", "xy"):
            out.update(colors.state_from_text(attr, str(value)))
            continue
        normalised = _normalise(component, attr, config, value)
        if normalised is not None:
            out[attr] = normalised
    return out


def _json_light(config: dict[str, Any], topic: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("state"), str):
        out["state"] = "on" if data["state"].upper() == "ON" else "off"
    if _is_number(data.get("brightness")):
        out["brightness"] = _to_percent(float(data["brightness"]), _scale(config))
    if _is_number(data.get("color_temp")):
        out["color_temp"] = _to_kelvin(float(data["color_temp"]), config)
    # A light in colour-temperature mode still reports a colour (its white's xy): not a colour choice.
    if data.get("color_mode") != "color_temp":
        out.update(colors.state_from_json(data.get("color")))
    return out


def _normalise(component: str, attr: str, config: dict[str, Any], value: Any) -> Any:
    text = str(value)
    if attr == "state":
        if component in ("light", "switch", "fan", "binary_sensor"):
            on = str(config.get("state_on", config.get("payload_on", "ON")))
            off = str(config.get("state_off", config.get("payload_off", "OFF")))
            if text == on:
                return "on"
            if text == off:
                return "off"
            return {"on": "on", "off": "off", "true": "on", "false": "off"}.get(text.lower())
        if component == "lock":
            for state in ("locked", "unlocked", "locking", "unlocking", "jammed"):
                if text == str(config.get(f"state_{state}", state.upper())):
                    return state
            return None
        if component == "media_player":
            return _MEDIA_STATES.get(text.strip().lower(), text[:100] or None)
        if component == "cover":
            for state, default in (("open", "open"), ("closed", "closed"), ("opening", "opening"), ("closing", "closing"), ("stopped", "stopped")):
                key = "state_closed" if state == "closed" else f"state_{state}"
                if text == str(config.get(key, default)):
                    return state
            return None
        return text[:100]
    if attr == "brightness":
        return _to_percent(float(value), _scale(config)) if _is_number_text(text) else None
    if attr == "color_temp":
        return _to_kelvin(float(value), config) if _is_number_text(text) else None
    if attr == "position":
        if not _is_number_text(text):
            return None
        lo = float(config.get("position_closed", 0))
        hi = float(config.get("position_open", 100))
        return round(100 * (float(value) - lo) / (hi - lo)) if hi != lo else None
    if attr == "volume":
        if not _is_number_text(text):
            return None
        # Players report percent or, as Home Assistant's volume_level, a 0..1 fraction.
        level = float(value) * 100 if "." in text and float(value) <= 1 else float(value)
        return max(0, min(100, round(level)))
    if attr in ("temperature", "current_temperature", "percentage"):
        if not _is_number_text(text):
            return None
        if attr == "percentage":
            lo = float(config.get("speed_range_min", 1))
            hi = float(config.get("speed_range_max", 100))
            return max(0, min(100, round(100 * float(value) / hi))) if hi >= lo > 0 else None
        return float(value)
    return text[:100] if text not in ("None", "") else None


def _scale(config: dict[str, Any]) -> float:
    scale = config.get("brightness_scale", 255)
    return float(scale) if _is_number(scale) and float(scale) > 0 else 255.0


def _to_percent(value: float, scale: float) -> int:
    return max(0, min(100, round(100 * value / scale)))


def _to_kelvin(value: float, config: dict[str, Any]) -> int | None:
    if config.get("color_temp_kelvin") is True:
        return round(value)
    return round(1_000_000 / value) if value > 0 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")
