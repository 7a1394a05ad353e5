"""The speaker's local language: hassil over the home's sentence templates, one source for all.

`HomeLanguage.understand(text)` is the whole text path: hassil matches the sentence against the
templates of the configured language (home-assistant-intents + voxhome's + the user's), with the
home's names, areas, modes and presets as slot lists, and the speaker's own area as context ('the
lights', 'in here'). What it matched becomes a Decision (actions.py). A sentence that has the
shape of a home command but names something the home doesn't have ('turn off the basement light')
is refused locally — "I don't know a basement light" — and publishes nothing; anything else that
isn't the home's goes to the cloud.

Slot lists are rebuilt only when the registry changes (discovery at run time), so the home as it
is now is what the speaker understands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hassil import recognize_best
from hassil.intents import SlotList
from hassil.models import UnmatchedTextEntity
from hassil.recognize import RecognizeResult

from device.events import ToolCall, ToolResult
from device.intent.actions import HERE, HOME_INTENTS, LOCAL_INTENTS, Actions
from device.intent.decision import Decision, Meaning
from device.intent.grammar_graph import GrammarGraph, build_graph
from device.intent.responses import Responses
from device.intent.slots import home_slot_lists, name_variants, signature
from device.intent.templates import Templates, load_templates
from device.tools.registry import Registry

_LOGGER = logging.getLogger(__name__)

EXACT = 0.95
"""Confidence of a sentence hassil matched with every name spelled as the home spells it."""
VARIANT = 0.85
"""…with a spoken variant of a name ('lamp' for the only lamp, 'kitchen lamp' for the kitchen light)."""
REFUSAL = 0.85
_HOME_VERBS = frozenset({"turn", "switch", "dim", "brighten", "kill", "lock", "unlock", "set", "is", "are", "power",
                         "shut", "activate", "deactivate", "toggle", "start", "stop"})
_KIND_WORD = re.compile(r"^\s*(lights?|lamps?|fans?|switch(es)?|blinds?|doors?|locks?|heaters?|sensors?|covers?|flaps?|gates?"
                        r"|windows?|shutters?|curtains?|shades?|garage|plugs?|sockets?|valves?|heating)\b")


class HomeLanguage:
    def __init__(self, registry: Registry, *, language: str = "en", custom_dir: str | Path | None = None,
                 area: str | None = None, now: Callable[[], datetime] = datetime.now,
                 templates: Templates | None = None) -> None:
        self.registry = registry
        self.templates = templates if templates is not None else load_templates(language, custom_dir)
        self.language = self.templates.language
        self.area = area
        self.responses = Responses(self.templates.responses)
        self.actions = Actions(registry, area=area, render=self.responses.intent, now=now)
        self._lists: tuple[tuple[object, ...], dict[str, SlotList], frozenset[str]] | None = None
        self._graph: tuple[tuple[object, ...], GrammarGraph] | None = None

    # --- the sentences the home can hear, for constrained decoding ------------------------------

    def signature(self) -> tuple[object, ...]:
        """Changes whenever the home's names, areas, modes or presets do."""
        return signature(self.registry)

    def graph(self) -> GrammarGraph:
        """Every local sentence of the language over the home as it is now, as a word graph with
        shared sub-grammars (built in ~1 s, never enumerated; cached until the home changes)."""
        key = self.signature()
        if self._graph is None or self._graph[0] != key:
            graph = build_graph(self.templates.intents, self.slot_lists(), LOCAL_INTENTS)
            self._graph = (key, graph)
        return self._graph[1]

    # --- matching --------------------------------------------------------------------------------

    def slot_lists(self) -> dict[str, SlotList]:
        return self._slots()[1]

    def _slots(self) -> tuple[tuple[object, ...], dict[str, SlotList], frozenset[str]]:
        key = signature(self.registry)
        if self._lists is None or self._lists[0] != key:
            inexact = frozenset(text for text, (_e, exact) in name_variants(self.registry).items() if not exact)
            self._lists = (key, home_slot_lists(self.registry), inexact)
        return self._lists

    def recognize(self, text: str) -> RecognizeResult | None:
        _key, lists, _inexact = self._slots()
        return recognize_best(text, self.templates.intents, slot_lists=lists, intent_context=self._context(),
                              best_slot_name="name", language=self.language)

    def _context(self) -> dict[str, Any]:
        return {"area": self.area or HERE}

    def understand(self, text: str) -> Decision:
        if not text.strip():
            return Decision("not_local", text, 0.9)
        text = spoken_decimals(text)
        result = self.recognize(text)
        if result is not None:
            meaning = _meaning(result, text)
            name_text = meaning.spoken.get("name", "").strip().lower()
            confidence = VARIANT if name_text in self._slots()[2] else EXACT
            return self.actions.decide(meaning, confidence)
        unknown = self._unknown(text)
        if unknown is not None:
            return unknown
        return Decision("not_local", text, 0.8)

    def _unknown(self, text: str) -> Decision | None:
        """A home command naming a device or room the home doesn't have: say so, don't guess."""
        _key, lists, _inexact = self._slots()
        result = recognize_best(text, self.templates.intents, slot_lists=lists, intent_context=self._context(),
                                allow_unmatched_entities=True, language=self.language)
        if result is None or result.intent.name not in HOME_INTENTS:
            return None
        missing = {k: " ".join(v.text.split()) for k, v in result.unmatched_entities.items()
                   if isinstance(v, UnmatchedTextEntity) and v.text.strip() and "<" not in v.text}
        if not missing or any(len(v.split()) > 4 for v in missing.values()):
            return None
        # Only a sentence with the words of a home command around the unknown name counts: not
        # a bare '{name}' template swallowing a question, nor 'tell me {name}' without a state.
        rest = text.lower()
        for value in missing.values():
            rest = rest.replace(value.lower(), " ")
        if len(re.findall(r"[^\W\d_]+", rest)) < 2 or (result.intent.name == "HassGetState" and "state" not in result.entities):
            return None
        # …and a device command at that: it starts with a home verb, or the unknown thing is a
        # kind of device ('the porch light'). 'open the news app' and 'wake me up at six' aren't.
        words = re.findall(r"[\w']+", text.lower())
        thing = missing.get("name") or missing.get("area", "")
        device_word = _KIND_WORD.search(" " + thing.lower().split()[-1]) is not None if thing.split() else False
        if not device_word and not (words and words[0] in _HOME_VERBS):
            return None
        if "area" in missing and "name" not in missing and result.intent.name in ("HassGetState", "HassClimateGetTemperature"):
            return None  # 'the temperature outside' is a question for the cloud, not an unknown room
        meaning = _meaning(result, text)
        if "name" in missing:
            message = self.responses.error("vox_unknown_name", article=_article(missing["name"]), thing=missing["name"])
            message = message or self.responses.error("no_entity", entity=missing["name"])
        elif "area" in missing:
            area = missing["area"]
            after = text.lower().split(area.lower(), 1)[-1] if area.lower() in text.lower() else ""
            kind = _KIND_WORD.match(after)
            if kind is not None:
                thing = f"{area} {kind.group(1)}"
                message = self.responses.error("vox_unknown_name", article=_article(thing), thing=thing)
            else:
                message = self.responses.error("vox_unknown_area", area=area) or self.responses.error("no_area", area=area)
        else:
            return None
        return Decision("reject", text, REFUSAL, meaning=meaning, message=message or f"I don't know {', '.join(missing.values())}.")

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, decision: Decision, result: ToolResult) -> str | None:
        """The response template's answer for a tool call that went through (None: keep the tool's)."""
        meaning, call = decision.meaning, decision.call
        if meaning is None or call is None or result.status != "ok" or call.name == "get_state":
            return None
        items = [i for i in result.data.get("entities", []) if isinstance(i, dict)]
        names = [_spoken(str(i.get("name", ""))) for i in items]
        slots = dict(meaning.values)
        slots.update(_call_slots(call))
        if names:
            slots["name"] = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if "area" in call.arguments and call.arguments["area"] != "all":
            slots["area"] = str(call.arguments["area"]).lower()
        key = meaning.response
        if "area" in call.arguments and len(names) != 1 and self.responses.has(meaning.intent, "lights_area") and key == "default":
            key = "lights_area" if call.arguments["area"] != "all" else "light_all"
        first = self.registry.get(str(items[0].get("entity"))) if items else None
        domain = first.component if first is not None else None
        return self.responses.intent(meaning.intent, key, slots, state={"domain": domain, "name": slots.get("name")})


_DIGIT_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9"}


def spoken_decimals(text: str) -> str:
    """'19 point five' → '19.5', '21 and a half' → '21.5' (Whisper writes the digits of the whole
    part; hassil's number lists read digits)."""
    text = re.sub(r"\b(\d+) point (\d|zero|one|two|three|four|five|six|seven|eight|nine)\b",
                  lambda m: f"{m.group(1)}.{_DIGIT_WORDS.get(m.group(2), m.group(2))}", text, flags=re.IGNORECASE)
    return re.sub(r"\b(\d+) and a half\b", r"\1.5", text, flags=re.IGNORECASE)


def _call_slots(call: ToolCall) -> dict[str, Any]:
    """The values the call really set (a relative step's result, not the word 'brighter')."""
    args = call.arguments
    out: dict[str, Any] = {}
    for key, slot in (("brightness", "brightness"), ("kelvin", "temperature"), ("temperature", "temperature"),
                      ("percentage", "percentage"), ("position", "position"), ("mode", "mode"), ("preset", "preset")):
        if key in args:
            value = args[key]
            out[slot] = f"{value:g}" if isinstance(value, float) else value
    if "preset" in out:
        out["preset"] = str(out["preset"]).replace("_", " ")
    return out


def _meaning(result: RecognizeResult, text: str) -> Meaning:
    # hassil reads '5 minutes' as 5.0; answers say '5 minutes'.
    values = {k: int(v.value) if isinstance(v.value, float) and v.value.is_integer() else v.value
              for k, v in result.entities.items()}
    spoken = {k: str(v.text or "").strip() for k, v in result.entities.items()}
    metadata = result.intent_metadata or {}
    return Meaning(result.intent.name, text, values, spoken, result.response or "default", metadata.get("vox_kind") == "only")


def _spoken(name: str) -> str:
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def _article(thing: str) -> str:
    if thing.endswith("s") and not thing.endswith("ss"):
        return "any"
    return "an" if thing[:1].lower() in "aeiou" else "a"


