"""From hassil's reading of a sentence to what the speaker does. Pure given the registry's state.

Home Assistant's intents are the vocabulary (HassTurnOn on a lock locks it, on a cover opens it,
as in HA); voxhome's own intents (Vox*) add relative changes, modes, presets, toggling and the
speaker's microphone. The tools only take absolute values, so "a bit brighter" becomes a number
from the entity's current state here. Anything the home can't do, or a name-less command that
could mean more than one device, is refused with a reason instead of guessed at: a wrong action
is worse than a question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from device.events import ToolCall
from device.intent.decision import Decision, Meaning
from device.tools.registry import Entity, Registry

_SAYS_HERE = re.compile(r"\b(here|this room)\b")
HERE = "__here__"
"""The area hassil fills in for 'in here' / 'the lights' when the speaker's own area is unknown."""
ALL = "all"

Render = Callable[..., str | None]

_SWITCHABLE = ("light", "switch", "fan", "climate")
_STEP = {"small": 0.5, "large": 2.0}
_TIMER_INTENTS = {
    "HassStartTimer": "start", "HassCancelTimer": "cancel", "HassCancelAllTimers": "cancel_all",
    "HassPauseTimer": "pause", "HassUnpauseTimer": "unpause", "HassTimerStatus": "status",
    "HassIncreaseTimer": "increase", "HassDecreaseTimer": "decrease",
}
_KIND_WORDS = {"light": ("light", "lights"), "fan": ("fan", "fans"), "switch": ("switch", "switches"),
               "climate": ("thermostat", "heating"), "cover": ("cover", "covers"), "lock": ("lock", "locks")}


class Actions:
    def __init__(self, registry: Registry, *, area: str | None, render: Render,
                 now: Callable[[], datetime] = datetime.now) -> None:
        self.registry = registry
        self.area = area
        self._render = render
        self._now = now

    def decide(self, m: Meaning, confidence: float) -> Decision:
        intent = m.intent
        if intent in _TIMER_INTENTS:
            return Decision("timer", m.text, confidence, meaning=m, action=(_TIMER_INTENTS[intent], dict(m.values)))
        if intent == "VoxStop":
            return Decision("speaker", m.text, confidence, meaning=m, action=("stop", 0))
        if intent == "VoxSpeakerMute":
            return Decision("speaker", m.text, confidence, meaning=m, action=("mute", 1))
        if intent == "HassSetVolume" and "name" not in m.values:
            # 'volume to 4' is the speaker's 10-step level; 'volume to 40' (percent, as HA reads it) too.
            said = _number(m.values.get("volume_level"), 50)
            level = round(said) if said <= 10 else round(said / 10)
            return Decision("speaker", m.text, confidence, meaning=m, action=("volume_set", max(0, min(10, level))))
        if intent == "HassSetVolumeRelative" and "name" not in m.values:
            step = -1 if str(m.values.get("volume_step")) == "down" else 1
            return Decision("speaker", m.text, confidence, meaning=m, action=("volume_step", step))
        if intent in ("HassGetCurrentTime", "HassGetCurrentDate"):
            now = self._now()
            text = self._render(intent, m.response, {"time": now.time(), "date": now.date()})
            return Decision("answer", m.text, confidence, meaning=m, message=text or now.strftime("%H:%M"))
        if intent == "HassNevermind":
            return Decision("answer", m.text, confidence, meaning=m, message="")
        handler = _HANDLERS.get(intent) or _HANDLERS_NAMED.get(intent)
        if handler is None:
            return Decision("not_local", m.text, 0.9, meaning=m)
        try:
            name, args = handler(self, m)
        except _Refusal as refusal:
            return Decision("reject", m.text, confidence, meaning=m, message=refusal.message)
        entities = (args["entity"],) if "entity" in args else ()
        return Decision("tool", m.text, confidence, ToolCall(name, args, source="local"), meaning=m, entities=entities)

    # --- targets ---------------------------------------------------------------------------------

    def target(self, m: Meaning, components: tuple[str, ...], *, area_ok: bool = True) -> dict[str, Any]:
        """{'entity': id} or {'area': …, 'domain': …}; refuses what isn't one clear target."""
        values = m.values
        domain = values.get("domain")
        wanted = _domains(domain, components)
        if "name" in values:
            entity = self.registry.get(str(values["name"]))
            if entity is None:
                raise _Refusal(f"I don't know a {m.spoken.get('name', values['name'])}.")
            if entity.component not in components:
                raise _Refusal(f"The {_spoken(entity.name)} can't do that.")
            said_area = values.get("area")
            if isinstance(said_area, str) and said_area != HERE and entity.area is not None \
                    and said_area.casefold() != entity.area.casefold():
                # 'the garage heater' when the only heater is in the office: not that one.
                thing = m.spoken.get("name") or _spoken(entity.name)
                raise _Refusal(f"There's no {thing} in the {said_area.lower()}.")
            return {"entity": entity.id}
        area = values.get("area")
        if area == HERE:
            if self.area is None and _SAYS_HERE.search(m.text.lower()):
                raise _Refusal("I don't know which room I'm in. Which room do you mean?")
            area = self.area
        device_class = values.get("device_class")
        if isinstance(area, str) and area:
            found = [e for c in wanted for e in self.registry.in_area(area, c) if _has_class(e, device_class)]
            if not found:
                if not self.registry.in_area(area):
                    raise _Refusal(f"I don't know a room called {area}.")
                raise _Refusal(f"There are no {_what(wanted, device_class)} in the {area.lower()}.")
            if len(found) == 1:
                return {"entity": found[0].id}
            if not area_ok:
                raise _Refusal(f"Which {_what(wanted, device_class, plural=False)} in the {area.lower()} do you mean?")
            return {"area": area, "domain": wanted[0]} if len(wanted) == 1 else {"area": area}
        found = [e for e in self.registry.entities() if e.component in wanted and _has_class(e, device_class)]
        if not found:
            raise _Refusal(f"There are no {_what(wanted, device_class)}.")
        if len(found) == 1:
            return {"entity": found[0].id}
        if area_ok and m.response.endswith("_all"):
            return {"area": ALL, "domain": wanted[0]}  # 'all the lights': said in so many words
        if wanted == ("light",) and self.area is None and values.get("area") == HERE:
            # 'The lights' from a speaker that doesn't know its room: every light in the house
            # on a misheard phrase is the worst kind of wrong action, so ask (or set [device] area).
            raise _Refusal("Which room's lights do you mean?")
        raise _Refusal(f"Which {_what(wanted, device_class, plural=False)} do you mean?")

    def entities_of(self, target: dict[str, Any], components: tuple[str, ...]) -> list[Entity]:
        if "entity" in target:
            e = self.registry.get(target["entity"])
            return [e] if e is not None else []
        area = target.get("area")
        wanted = (target["domain"],) if "domain" in target else components
        return [e for e in self.registry.entities() if e.component in wanted and (area == ALL or e.area == area)]

    def value(self, entity_id: str, key: str, default: float) -> float:
        return _number(self.registry.state(entity_id).values.get(key), default)


class _Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _turn(on: bool) -> Callable[[Actions, Meaning], tuple[str, dict[str, Any]]]:
    def handle(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
        domain = m.values.get("domain")
        components: tuple[str, ...] = (*_SWITCHABLE, "lock", "cover", "scene")
        if domain is not None:
            components = _domains(domain, components)
        elif "name" not in m.values and "device_class" not in m.values:
            components = ("light",) if "area" in m.values else _SWITCHABLE
        target = a.target(m, components)
        found = a.entities_of(target, components)
        kinds = {e.component for e in found}
        if kinds == {"lock"}:
            return ("lock" if on else "unlock"), target
        if kinds == {"cover"}:
            return ("open_cover" if on else "close_cover"), target
        if kinds == {"scene"}:
            if not on:
                raise _Refusal("A scene can't be turned off.")
            return "activate_scene", target
        if kinds - set(_SWITCHABLE):
            raise _Refusal("That can't be turned " + ("on." if on else "off."))
        return ("turn_on" if on else "turn_off"), target
    return handle


def _toggle(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("light", "switch", "fan"))
    found = a.entities_of(target, ("light", "switch", "fan"))
    on = any(a.registry.state(e.id).values.get("state") == "on" for e in found)
    return ("turn_off" if on else "turn_on"), target


def _light_set(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("light",))
    if "brightness" in m.values:
        return "set_brightness", {**target, "brightness": int(max(0, min(100, _number(m.values["brightness"], 100))))}
    if "temperature" in m.values:
        return "set_color_temp", {**target, "kelvin": _kelvin(m.values["temperature"])}
    if "color" in m.values:
        return "set_color", {**target, "color": str(m.values["color"])}
    raise _Refusal("What should I set it to?")


def _light_step(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    try:
        target = a.target(m, ("light",))
    except _Refusal:
        # 'a bit brighter' with no room: the lights that are on now, if any are.
        if "name" in m.values or ("area" in m.values and m.values["area"] != HERE):
            raise
        target = {"area": ALL, "domain": "light"}
        if not any(a.registry.state(e.id).values.get("state") == "on" for e in a.entities_of(target, ("light",))):
            raise
    found = a.entities_of(target, ("light",))
    lit = [e for e in found if a.registry.state(e.id).values.get("state") == "on"] or found
    # Unknown or off counts as half: 'a bit brighter' from nothing known is still a sensible light.
    levels = [a.value(e.id, "brightness", 50) if a.registry.state(e.id).values.get("state") == "on" else 50 for e in lit]
    up = str(m.values.get("direction")) in ("brighten", "up")
    delta = 20 * _STEP.get(str(m.values.get("amount")), 1.0) * (1 if up else -1)
    level = int(max(1, min(100, (max(levels) if levels else 50) + delta)))
    if len(lit) == 1:
        return "set_brightness", {"entity": lit[0].id, "brightness": level}
    return "set_brightness", {**target, "brightness": level}


def _white_step(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("light",), area_ok=False)
    current = a.value(target["entity"], "color_temp_kelvin", 4000)
    delta = 500 * _STEP.get(str(m.values.get("amount")), 1.0) * (-1 if m.values.get("direction") == "warmer" else 1)
    return "set_color_temp", {**target, "kelvin": int(max(2000, min(6500, current + delta)))}


def _climate_set(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("climate",), area_ok=False)
    return "set_temperature", {**target, "temperature": _number(m.values.get("temperature"), 20)}


def _climate_step(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("climate",), area_ok=False)
    step = _STEP.get(str(m.values.get("amount")), 1.0) * (1 if m.values.get("direction") == "up" else -1)
    return "set_temperature", {**target, "temperature": a.value(target["entity"], "temperature", 20.0) + step}


def _hvac_mode(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("climate",), area_ok=False)
    return "set_hvac_mode", {**target, "mode": str(m.values.get("mode"))}


def _fan_speed(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("fan",), area_ok=False)
    return "set_fan_speed", {**target, "percentage": int(max(0, min(100, _number(m.values.get("percentage"), 50))))}


def _fan_preset(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("fan",), area_ok=False)
    entity = a.registry.get(target["entity"])
    preset = str(m.values.get("preset"))
    if entity is not None and preset not in (entity.config.get("preset_modes") or []):
        raise _Refusal(f"The {_spoken(entity.name)} has no {preset.replace('_', ' ')} mode.")
    return "set_fan_preset", {**target, "preset": preset}


def _fan_step(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("fan",), area_ok=False)
    delta = 25 * _STEP.get(str(m.values.get("amount")), 1.0) * (1 if m.values.get("direction") == "up" else -1)
    return "set_fan_speed", {**target, "percentage": int(max(0, min(100, a.value(target["entity"], "percentage", 50) + delta)))}


def _cover_stop(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    return "stop_cover", a.target(m, ("cover",))


def _cover_position(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("cover",), area_ok=False)
    return "set_cover_position", {**target, "position": int(max(0, min(100, _number(m.values.get("position"), 50))))}


def _media(tool: str) -> Callable[[Actions, Meaning], tuple[str, dict[str, Any]]]:
    def handle(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
        return tool, a.target(m, ("media_player",), area_ok=False)
    return handle


def _media_volume(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    target = a.target(m, ("media_player",), area_ok=False)
    if "volume_level" in m.values:
        volume = _number(m.values["volume_level"], 50)
    else:
        step = -10 if str(m.values.get("volume_step")) == "down" else 10
        volume = a.value(target["entity"], "volume", 50) + step
    return "set_media_volume", {**target, "volume": int(max(0, min(100, volume)))}


def _get_state(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    readable = ("light", "switch", "fan", "climate", "lock", "cover", "sensor", "binary_sensor", "media_player")
    return "get_state", a.target(m, readable, area_ok=False)


def _get_temperature(a: Actions, m: Meaning) -> tuple[str, dict[str, Any]]:
    area = m.values.get("area")
    if area == HERE:
        area = a.area
    sensors = [e for e in a.registry.entities() if e.component == "sensor" and e.device_class == "temperature"]
    climates = [e for e in a.registry.entities() if e.component == "climate"]
    if "name" in m.values:
        return "get_state", a.target(m, ("sensor", "climate"), area_ok=False)
    if isinstance(area, str) and area:
        if not a.registry.in_area(area):
            raise _Refusal(f"I don't know a room called {area}.")
        here = [e for e in sensors if e.area == area] or [e for e in climates if e.area == area]
        if not here:
            raise _Refusal(f"There's no thermometer in the {area.lower()}.")
        return "get_state", {"entity": here[0].id}
    one = sensors if len(sensors) == 1 else climates if len(climates) == 1 else []
    if not one:
        raise _Refusal("Which room do you mean?")
    return "get_state", {"entity": one[0].id}


_HANDLERS: dict[str, Callable[[Actions, Meaning], tuple[str, dict[str, Any]]]] = {
    "HassTurnOn": _turn(True), "HassTurnOff": _turn(False), "VoxToggle": _toggle,
    "HassLightSet": _light_set, "VoxLightStep": _light_step, "VoxColorTempStep": _white_step,
    "HassClimateSetTemperature": _climate_set, "VoxTemperatureStep": _climate_step, "VoxSetHvacMode": _hvac_mode,
    "HassFanSetSpeed": _fan_speed, "VoxSetFanPreset": _fan_preset, "VoxFanStep": _fan_step,
    "VoxStopCover": _cover_stop, "HassSetPosition": _cover_position,
    "HassGetState": _get_state, "VoxGetHumidity": _get_state, "HassClimateGetTemperature": _get_temperature,
    "HassMediaPause": _media("media_pause"), "HassMediaUnpause": _media("media_play"),
    "HassMediaNext": _media("media_next"), "HassMediaPrevious": _media("media_previous"),
}
# Volume with a player's name is the player's; without one it is the speaker's own (decide()).
_HANDLERS_NAMED = {"HassSetVolume": _media_volume, "HassSetVolumeRelative": _media_volume}
HOME_INTENTS = frozenset(_HANDLERS) | frozenset(_HANDLERS_NAMED)
"""Intents that act on (or read) the home: the ones constrained decoding listens for."""
LOCAL_INTENTS = HOME_INTENTS | set(_TIMER_INTENTS) | {
    "VoxStop", "VoxSpeakerMute", "HassSetVolume", "HassSetVolumeRelative", "HassGetCurrentTime", "HassGetCurrentDate", "HassNevermind",
}


def _domains(domain: Any, components: tuple[str, ...]) -> tuple[str, ...]:
    """A template's domain slot (one or a list, 'everything off' → lights, switches, fans) within
    what the action can act on."""
    said = [domain] if isinstance(domain, str) else list(domain) if isinstance(domain, (list, tuple)) else []
    chosen = tuple(d for d in said if d in components)
    return chosen or components


def _has_class(entity: Entity, device_class: Any) -> bool:
    return device_class is None or entity.device_class == device_class or (
        device_class in ("blind", "shade", "curtain", "shutter") and entity.device_class is None and entity.component == "cover")


def _what(components: tuple[str, ...], device_class: Any = None, *, plural: bool = True) -> str:
    if isinstance(device_class, str):
        return device_class + ("s" if plural else "")
    one, many = _KIND_WORDS.get(components[0], ("device", "devices")) if len(components) == 1 else ("device", "devices")
    return many if plural else one


def _spoken(name: str) -> str:
    """'Kitchen light' reads 'kitchen light' after 'the'; acronyms ('TV') stay."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return int(number) if number.is_integer() else number


def _kelvin(value: Any) -> int:
    """HA's colour-temperature names come as kelvin or as a word; mireds are converted."""
    words = {"warm": 2700, "warm white": 2700, "soft white": 2700, "neutral": 4000, "neutral white": 4000,
             "cool": 5000, "cool white": 5000, "daylight": 6500, "cold": 6500}
    if isinstance(value, str) and value.lower() in words:
        return words[value.lower()]
    number = _number(value, 4000)
    return int(1_000_000 / number) if 0 < number < 1000 else int(max(1000, min(10000, number)))
