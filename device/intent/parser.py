"""Local understanding: a transcript → a tool call, "not local" (ask the cloud), or a rejection.

Rules over the home as it is now (names, aliases and areas from the registry). A command that
clearly addresses a device the home doesn't have ("turn on the sauna") is rejected with a clear
answer instead of guessed at; anything that isn't about the home goes to the cloud. Relative
phrasings ("a bit brighter") become absolute values from the entity's current state, because
the tools only take absolute values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from device.events import ToolCall
from device.intent.text import STOP, Mention, Vocabulary, normalise_text
from device.tools.registry import Entity, Registry

Kind = Literal["tool", "not_local", "reject"]
ALL_AREA = "all"
_NOT_LOCAL = re.compile(
    r"\b(weather|forecast|timer|alarm|remind|reminder|music|song|songs|play|playing|news|joke|call|email|"
    r"message|calendar|time is it|spotify|podcast|radio station|recipe|who|why|meaning|translate|spell|"
    r"define|outside|tomorrow|today|yesterday|score|stock|wikipedia|search)\b"
)
_QUESTION = re.compile(r"^(is|are|what|how|which|did|does|do|check|tell me|status)\b")
_OFF = re.compile(r"\b(off|out)\b|\b(kill|deactivate|disable|stop the heating)\b")
_ON = re.compile(r"\b(on|activate|enable|light up|start)\b")
_HOME_VERB = re.compile(r"\b(turn|switch|shut|power|kill|dim|brighten|lock|unlock|open|close|raise|lower|activate|set|make)\b")
_STRONG_VERB = re.compile(r"\b(turn|switch|shut|power|kill|dim|brighten|lock|unlock|activate)\b")
_CONTEXT = re.compile(r"\b(thermostat|temperature|heating|degrees|warmer|cooler|colder|hotter|brighter|dimmer|darker|lighter|brightness)\b")
_HOME_NOUN = re.compile(r"\b(doors?|windows?|blinds|curtains|shades|garage|gate|oven|tv|heater|sauna|kettle|lights?|lamps?)\b")
_RELATIVE = {"brighter": 20, "dimmer": -20, "darker": -20, "lighter": 20}
_FAN_SPEEDS = {"low": 33, "medium": 66, "high": 100, "max": 100, "maximum": 100, "full": 100}


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    text: str
    confidence: float
    call: ToolCall | None = None
    message: str = ""
    entities: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "decision", "kind": self.kind, "text": self.text, "confidence": round(self.confidence, 2)}
        if self.call is not None:
            out["tool"] = self.call.name
            out["arguments"] = self.call.arguments
        if self.message:
            out["message"] = self.message
        return out


class Understanding:
    """Built per registry snapshot; `understand()` is pure given the registry's current state."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.vocab = Vocabulary(registry)

    def understand(self, text: str) -> Decision:
        tokens = normalise_text(text)
        joined = " ".join(tokens)
        mentions = self.vocab.mentions(tokens)
        entities = [m.entity for m in mentions if m.entity is not None]
        areas = [m.area for m in mentions if m.area is not None]
        kinds = [m.kind for m in mentions if m.kind is not None]
        if not tokens:
            return Decision("not_local", text, 0.9)
        if _NOT_LOCAL.search(joined) and not entities:
            return Decision("not_local", text, 0.9)
        if _QUESTION.match(joined):
            return self._question(text, tokens, mentions, entities, areas, kinds)
        parsed = self._command(joined, tokens, entities, areas, kinds)
        if parsed is not None:
            name, args, confidence = parsed
            if isinstance(args, str):
                return Decision("reject", text, confidence, message=args)
            # Words the call itself explains: a preset or mode it sets, 'door' for the one lock.
            said = {w for v in args.values() if isinstance(v, str) for w in v.lower().split()} if isinstance(args, dict) else set()
            if name in ("lock", "unlock"):
                said |= {"door", "lock"}
            if not entities and (unknown := [w for w in _unexplained(tokens, mentions) if w not in said]):
                # 'the porch light' with no porch: a device we don't have, not every light.
                return Decision("reject", text, 0.85, message=_dont_know(_with_kind(tokens, mentions, unknown)))
            exact = all(m.exact for m in mentions if m.entity is not None)
            return Decision("tool", text, confidence if exact else confidence - 0.1, ToolCall(name, args, source="local"))
        if (_STRONG_VERB.search(joined) or (_HOME_VERB.search(joined) and (kinds or areas or _HOME_NOUN.search(joined)))
                or re.match(r"^(open|close|shut) the\b", joined)):
            return self._unknown(text, tokens, mentions)
        return Decision("not_local", text, 0.8)

    # --- commands ------------------------------------------------------------------------------

    def _command(self, joined: str, tokens: list[str], entities: list[Entity], areas: list[str],
                 kinds: list[str]) -> tuple[str, dict[str, Any] | str, float] | None:
        number = _number(tokens)
        components = {e.component for e in entities}
        kind = kinds[0] if kinds else None
        target = entities[0] if entities else None

        if re.search(r"\bunlock\b", joined) or (re.search(r"\bopen\b", joined) and components == {"lock"}):
            return self._single("unlock", "lock", target, joined, areas)
        if re.search(r"\block\b", joined) or (re.search(r"\b(close|shut)\b", joined) and components == {"lock"}):
            return self._single("lock", "lock", target, joined, areas)
        if "scene" in components or re.search(r"\bscene\b", joined):
            if target and target.component == "scene":
                return "activate_scene", {"entity": target.id}, 0.95
            return None
        if target is None and kind is None and not areas and _CONTEXT.search(joined) is None:
            return None

        # Climate: a number of degrees, a mode, warmer/cooler.
        climate = target if target and target.component == "climate" else None
        if climate is None and target is None and (kind == "climate" or re.search(r"\b(degrees|temperature|warmer|cooler|colder|hotter)\b", joined)):
            climate = self._only("climate")
        if climate is not None and (target is None or target.component == "climate"):
            mode = next((m for m in ("heat", "cool", "auto") if re.search(rf"\b{m}(ing)? mode\b|\b(to|on) {m}\b", joined)), None)
            if mode:
                return "set_hvac_mode", {"entity": climate.id, "mode": mode}, 0.9
            if number is not None:
                return "set_temperature", {"entity": climate.id, "temperature": number}, 0.95
            step = 1.0 if re.search(r"\b(warmer|hotter|heat up|turn \w+ up|turn up)\b", joined) else -1.0 if re.search(r"\b(cooler|colder|cool down|turn \w+ down|turn down)\b", joined) else 0
            if step:
                current = self.registry.state(climate.id).values.get("temperature", 20.0)
                return "set_temperature", {"entity": climate.id, "temperature": float(current) + step}, 0.75
            if _OFF.search(joined):
                return "turn_off", {"entity": climate.id}, 0.9
            if _ON.search(joined):
                return "turn_on", {"entity": climate.id}, 0.9

        # Covers: open/close/stop/position.
        cover = target if target and target.component == "cover" else None
        if cover is None and kind == "cover" and not entities:
            cover = self._only("cover")
        if cover is None and not entities and areas and re.search(r"\b(open|close|shut|raise|lower)\b", joined):
            in_area = self.registry.in_area(areas[0], "cover")
            cover = in_area[0] if len(in_area) == 1 else None
        if cover is not None:
            if number is not None and "percent" in tokens or re.search(r"\b(halfway|half way)\b", joined):
                return "set_cover_position", {"entity": cover.id, "position": int(number if number is not None else 50)}, 0.9
            for pattern, tool in ((r"\b(open|raise|lift|up)\b", "open_cover"), (r"\b(close|shut|lower|down)\b", "close_cover"), (r"\b(stop|halt|pause)\b", "stop_cover")):
                if re.search(pattern, joined):
                    return tool, {"entity": cover.id}, 0.95
            return None

        # Fans: speed, preset.
        fan = target if target and target.component == "fan" else None
        if fan is None and kind == "fan" and not entities:
            fan = self._only("fan")
        if fan is not None:
            presets = fan.config.get("preset_modes") or []
            preset = next((p for p in presets if isinstance(p, str) and re.search(rf"\b{re.escape(p.lower())}\b", joined)), None)
            if preset:
                return "set_fan_preset", {"entity": fan.id, "preset": preset}, 0.9
            if number is not None:
                return "set_fan_speed", {"entity": fan.id, "percentage": int(min(100, number))}, 0.9
            speed = next((v for k, v in _FAN_SPEEDS.items() if re.search(rf"\b{k}\b", joined)), None)
            if speed is not None:
                return "set_fan_speed", {"entity": fan.id, "percentage": speed}, 0.85
            change = 25 if re.search(r"\b(faster|turn \w+ up|turn up)\b", joined) else -25 if re.search(r"\b(slower|turn \w+ down|turn down)\b", joined) else 0
            if change:
                current = self.registry.state(fan.id).values.get("percentage", 50)
                return "set_fan_speed", {"entity": fan.id, "percentage": max(0, min(100, int(current) + change))}, 0.75

        # Lights: brightness, relative brightness, colour temperature.
        light_target = self._light_target(target, areas, kind, joined)
        if light_target is not None:
            if isinstance(light_target, str):
                return "set_brightness", light_target, 0.9
            kelvin = _kelvin(joined, number)
            if kelvin is not None:
                return "set_color_temp", {**light_target, "kelvin": kelvin}, 0.85
            if number is not None and (re.search(r"\b(dim|brighten|brightness|percent|to)\b", joined)):
                return "set_brightness", {**light_target, "brightness": int(min(100, number))}, 0.95
            if re.search(r"\b(full brightness|max brightness|maximum brightness)\b", joined):
                return "set_brightness", {**light_target, "brightness": 100}, 0.9
            delta = next((v for k, v in _RELATIVE.items() if re.search(rf"\b{k}\b", joined)), None)
            if delta is None and re.search(r"\bturn up\b|\bturn [a-z ]+ up\b", joined):
                delta = 20
            elif delta is None and re.search(r"\bturn down\b|\bturn [a-z ]+ down\b", joined):
                delta = -20
            if delta is None and re.search(r"\bdim\b", joined):
                delta = -30
            elif delta is None and re.search(r"\bbrighten\b", joined):
                delta = 30
            if delta is not None:
                if re.search(r"\b(bit|little|touch|slightly)\b", joined):
                    delta = delta // 2
                return self._relative_brightness(light_target, delta)

        # On/off for anything switchable.
        if _OFF.search(joined) or _ON.search(joined):
            tool = "turn_off" if _OFF.search(joined) else "turn_on"
            if target is not None and target.component in ("light", "switch", "fan", "climate"):
                return tool, {"entity": target.id}, 0.95
            if target is not None:
                return tool, f"The {target.name} can't be turned {'off' if tool == 'turn_off' else 'on'}.", 0.85
            domain = kind or ("light" if not re.search(r"\b(everything|all devices)\b", joined) else None)
            return self._area_call(tool, areas, domain)
        return None

    def _single(self, tool: str, component: str, target: Entity | None, joined: str,
                areas: list[str]) -> tuple[str, dict[str, Any] | str, float] | None:
        if target is not None and target.component == component:
            return tool, {"entity": target.id}, 0.95
        if target is not None:
            return tool, f"The {target.name} isn't a lock.", 0.85
        if areas:
            in_area = self.registry.in_area(areas[0], component)
            if len(in_area) == 1:
                return tool, {"entity": in_area[0].id}, 0.85
            return tool, f"There's no {component} in the {areas[0].lower()}.", 0.85
        only = self._only(component)
        if only is not None and re.search(r"\b(door|the lock|locks?)\b", joined) and not re.search(r"\b(back|side|garden|car)\b", joined):
            return tool, {"entity": only.id}, 0.7
        return None

    def _only(self, component: str) -> Entity | None:
        found = [e for e in self.registry.entities() if e.component == component]
        return found[0] if len(found) == 1 else None

    def _light_target(self, target: Entity | None, areas: list[str], kind: str | None, joined: str) -> dict[str, Any] | str | None:
        if target is not None:
            return {"entity": target.id} if target.component == "light" else None
        lightish = kind == "light" or re.search(r"\b(dim|brighten|brighter|dimmer|darker|brightness|kelvin|warm white|cool white|daylight)\b", joined)
        if not lightish or (kind is not None and kind != "light"):
            return None
        if areas:
            if not self.registry.in_area(areas[0], "light"):
                return f"There are no lights in the {areas[0].lower()}."
            return {"area": areas[0], "domain": "light"}
        return {"area": ALL_AREA, "domain": "light"}

    def _area_call(self, tool: str, areas: list[str], domain: str | None) -> tuple[str, dict[str, Any] | str, float]:
        area = areas[0] if areas else ALL_AREA
        wanted = [e for e in self.registry.entities() if e.component in (("light", "switch", "fan", "climate") if domain is None else (domain,))]
        if area != ALL_AREA:
            wanted = [e for e in wanted if e.area == area]
        if not wanted:
            what = {"light": "lights", "fan": "fans", "switch": "switches", "climate": "heating", None: "devices"}.get(domain, "devices")
            where = f" in the {area.lower()}" if area != ALL_AREA else ""
            return tool, f"There are no {what}{where}.", 0.85
        args: dict[str, Any] = {"area": area}
        if domain is not None:
            args["domain"] = domain
        return tool, args, 0.9 if area != ALL_AREA else 0.75

    def _relative_brightness(self, target: dict[str, Any], delta: int) -> tuple[str, dict[str, Any] | str, float]:
        lights: list[Entity | None]
        if "entity" in target:
            lights = [self.registry.get(target["entity"])]
        else:
            lights = [e for e in self.registry.entities() if e.component == "light" and (target["area"] == ALL_AREA or e.area == target["area"])]
            on: list[Entity | None] = [e for e in lights if e and self.registry.state(e.id).values.get("state") == "on"]
            lights = on or lights
        # Unknown or off counts as half: 'a bit brighter' from nothing known is still a sensible light.
        levels = [self.registry.state(e.id).values.get("brightness", 50) if self.registry.state(e.id).values.get("state") == "on" else 50 for e in lights if e]
        base = max(levels) if levels else 50
        value = max(1, min(100, int(base) + delta))
        if len(lights) == 1 and lights[0] is not None:
            return "set_brightness", {"entity": lights[0].id, "brightness": value}, 0.75
        return "set_brightness", {**target, "brightness": value}, 0.7

    # --- questions and unknown devices ---------------------------------------------------------

    def _question(self, text: str, tokens: list[str], mentions: list[Mention], entities: list[Entity],
                  areas: list[str], kinds: list[str]) -> Decision:
        joined = " ".join(tokens)
        if entities:
            e = entities[0]
            return Decision("tool", text, 0.95 if mentions[0].exact else 0.85, ToolCall("get_state", {"entity": e.id}, source="local"))
        if re.search(r"\b(temperature|warm|cold|hot|degrees)\b", joined):
            sensors = [e for e in self.registry.entities() if e.component == "sensor" and e.device_class == "temperature"]
            if areas:
                sensors = [e for e in sensors if e.area == areas[0]] or [e for e in self.registry.entities() if e.component == "climate" and e.area == areas[0]]
            if len(sensors) >= 1 and (areas or len(sensors) == 1):
                return Decision("tool", text, 0.85, ToolCall("get_state", {"entity": sensors[0].id}, source="local"))
        if kinds and not _unexplained(tokens, mentions):
            found = self.registry.in_area(areas[0], kinds[0]) if areas else [e for e in self.registry.entities() if e.component == kinds[0]]
            if len(found) == 1:
                return Decision("tool", text, 0.85, ToolCall("get_state", {"entity": found[0].id}, source="local"))
        if re.search(r"\b(locked|unlocked)\b", joined) and (lock := self._only("lock")) and not [w for w in _unexplained(tokens, mentions) if w not in ("door", "locked", "unlocked")]:
            return Decision("tool", text, 0.75, ToolCall("get_state", {"entity": lock.id}, source="local"))
        if areas and re.search(r"\b(open|closed|locked|unlocked)\b", joined):
            movable = [e for e in self.registry.in_area(areas[0]) if e.component in ("cover", "lock", "binary_sensor")]
            if len(movable) == 1:
                return Decision("tool", text, 0.8, ToolCall("get_state", {"entity": movable[0].id}, source="local"))
        if re.search(r"\b(on|off|locked|unlocked|open|closed|running|done|finished|ready|working)\b\s*$", joined) and re.match(r"^(is|are)\b", joined):
            return self._unknown(text, tokens, mentions)
        return Decision("not_local", text, 0.8)

    def _unknown(self, text: str, tokens: list[str], mentions: list[Mention]) -> Decision:
        """A command about the home naming nothing the home has: say so, don't guess."""
        covered = {i for m in mentions for i in range(m.start, m.end) if m.kind is None}
        verbs = {"turn", "switch", "shut", "power", "kill", "dim", "brighten", "lock", "unlock", "open", "close",
                 "raise", "lower", "activate", "set", "make", "is", "are", "off", "on", "up", "down", "percent",
                 "degrees", "locked", "unlocked", "closed", "running", "start", "stop", "it", "please"}
        words = [t for i, t in enumerate(tokens) if i not in covered and t not in STOP and t not in verbs and not _is_number(t)]
        if not words:
            return Decision("not_local", text, 0.6)
        return Decision("reject", text, 0.85, message=_dont_know(words))


_KNOWN = {
    "turn", "switch", "shut", "power", "kill", "dim", "brighten", "lock", "unlock", "open", "close", "raise",
    "lower", "lift", "activate", "set", "make", "put", "start", "stop", "halt", "pause", "heat", "cool", "auto",
    "on", "off", "up", "down", "out", "it", "is", "are", "every", "everything", "house", "home", "everywhere",
    "percent", "degrees", "degree", "kelvin", "brightness", "brighter", "dimmer", "darker", "lighter", "bit",
    "little", "touch", "slightly", "warm", "warmer", "white", "cooler", "colder", "hotter", "daylight", "neutral",
    "cozy", "full", "max", "maximum", "mode", "speed", "low", "medium", "high", "halfway", "half", "way",
    "faster", "slower", "bring",
    "temperature", "scene", "by", "with", "level", "enable", "disable", "deactivate", "light", "lights",
}


def _unexplained(tokens: list[str], mentions: list[Mention]) -> list[str]:
    """Content words that name nothing in the home and aren't part of a command's phrasing."""
    covered = {i for m in mentions for i in range(m.start, m.end)}
    return [t for i, t in enumerate(tokens) if i not in covered and t not in STOP and t not in _KNOWN and not _is_number(t)]


def _with_kind(tokens: list[str], mentions: list[Mention], unknown: list[str]) -> list[str]:
    """'porch' + the kind word right after it → 'porch light'."""
    last = max(i for i, t in enumerate(tokens) if t in unknown)
    kind = next((m for m in mentions if m.kind is not None and m.start == last + 1), None)
    return unknown + tokens[kind.start : kind.end] if kind else unknown


def _dont_know(words: list[str]) -> str:
    thing = " ".join(words[:4])
    article = "any" if thing.endswith("s") and not thing.endswith("ss") else ("an" if thing[0] in "aeiou" else "a")
    return f"I don't know {article} {thing}."


def _number(tokens: list[str]) -> float | None:
    for t in tokens:
        if _is_number(t):
            value = float(t)
            return int(value) if value.is_integer() else value
    return None


def _is_number(token: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?", token) is not None


def _kelvin(joined: str, number: float | None) -> int | None:
    if number is not None and "kelvin" in joined:
        return int(number)
    if re.search(r"\bwarm white\b|\bwarmer light\b|\bcozy\b", joined):
        return 2700
    if re.search(r"\bcool white\b|\bneutral white\b", joined):
        return 4000
    if re.search(r"\bdaylight\b", joined):
        return 6500
    return None

