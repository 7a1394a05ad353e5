"""Text normalisation and the home's vocabulary (names, areas, kinds of device). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from device.intent.numbers import words_to_digits
from device.tools.registry import Entity, Registry, normalise

_CONTRACTIONS = {
    "what's": "what is", "whats": "what is", "it's": "it is", "that's": "that is", "i'm": "i am",
    "don't": "do not", "isn't": "is not", "aren't": "are not", "let's": "let us", "how's": "how is",
}
_FILLER = (
    "could you please", "can you please", "would you please", "could you", "can you", "would you",
    "will you", "i want you to", "i would like you to", "i'd like you to", "go ahead and", "please",
    "hey", "okay", "ok", "kindly", "for me", "right now", "thanks", "thank you", "just", "now",
)
# Idioms rewritten into the plain command they mean (after contractions are expanded).
_IDIOMS = (
    (r"\blet me in\b", "unlock the door"),
    (r"\block up\b", "lock the door"),
    (r"\bsecure\b", "lock"),
    (r"\b(i am|it is|i feel) (cold|freezing|chilly)\b", "make it warmer"),
    (r"\b(i am|it is|i feel) (hot|too warm|boiling)\b", "make it cooler"),
    (r"\bspeed up\b", "faster"),
    (r"\bslow down\b", "slower"),
)
_FILLER_RE = re.compile(r"\b(" + "|".join(re.escape(f) for f in _FILLER) + r")\b")

# Words that name a kind of device (and the component they mean).
KIND_WORDS: dict[str, str] = {
    "light": "light", "lights": "light", "lamp": "light", "lamps": "light", "lighting": "light",
    "bulb": "light", "bulbs": "light",
    "fan": "fan", "fans": "fan",
    "heating": "climate", "heater": "climate", "heat": "climate", "thermostat": "climate", "ac": "climate",
    "aircon": "climate", "air conditioning": "climate",
    "lock": "lock", "locks": "lock", "switch": "switch", "plug": "switch", "socket": "switch",
    "cover": "cover", "covers": "cover",
}
STOP = {"the", "a", "an", "my", "our", "all", "of", "in", "on", "to", "at", "for", "and", "some", "please"}


def normalise_text(text: str) -> list[str]:
    """Lower case, contractions expanded, fillers and punctuation removed, numbers as digits."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"(\d)\s*%", r"\1 percent", t)
    t = re.sub(r"(\d)\s*°\s*c?\b", r"\1 degrees", t)
    for short, full in _CONTRACTIONS.items():
        t = re.sub(rf"\b{re.escape(short)}\b", full, t)
    for pattern, plain in _IDIOMS:
        t = re.sub(pattern, plain, t)
    t = _FILLER_RE.sub(" ", t)
    t = re.sub(r"[^a-z0-9.\s-]", " ", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t).replace("-", " ")
    return words_to_digits(t.split())


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int
    entity: Entity | None = None
    area: str | None = None
    kind: str | None = None
    exact: bool = True


class Vocabulary:
    """Every phrase that names something in the home now, longest first."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.areas = {normalise(a): a for a in registry.areas()}
        full: dict[str, list[Entity]] = {}
        partial: dict[str, list[Entity]] = {}
        for e in registry.entities():
            for name in e.names:
                full.setdefault(normalise(name), []).append(e)
            if e.component in ("sensor", "binary_sensor"):
                continue  # 'temperature' alone must stay a word, not the living-room sensor
            for variant in self._variants(e):
                partial.setdefault(variant, []).append(e)
        self.names = {k: v[0] for k, v in full.items() if len({e.id for e in v}) == 1 and k}
        # 'door' (garage door minus its area) must not win over 'front door' and 'back door'.
        partial = {
            k: v for k, v in partial.items()
            if not any(f" {k}" in f" {name}" or f"{k} " in f"{name} " for name, owners in full.items() if owners[0].id != v[0].id)
        }
        # A shortened name counts only when it names exactly one entity and isn't an area or a kind.
        self.partial = {
            k: v[0] for k, v in partial.items()
            if len({e.id for e in v}) == 1 and k and k not in self.names and k not in self.areas and k not in KIND_WORDS
        }

    def _variants(self, e: Entity) -> set[str]:
        out = set()
        for name in e.names:
            n = normalise(name)
            for area in self.areas:
                if n.startswith(area + " "):
                    out.add(n[len(area) + 1 :])
            words = [w for w in n.split() if w not in KIND_WORDS]
            if words:
                out.add(" ".join(words))
        return out

    def mentions(self, tokens: list[str]) -> list[Mention]:
        """Non-overlapping mentions, longest phrases first: entities, then areas, then kinds."""
        taken = [False] * len(tokens)
        found: list[Mention] = []
        tables: list[tuple[dict[str, object], str]] = [
            (self.names, "entity"), (self.areas, "area"), (self.partial, "partial"), (KIND_WORDS, "kind"),  # type: ignore[list-item]
        ]
        for table, what in tables:
            for size in range(min(6, len(tokens)), 0, -1):
                for i in range(len(tokens) - size + 1):
                    if any(taken[i : i + size]):
                        continue
                    phrase = " ".join(tokens[i : i + size])
                    value = table.get(phrase)
                    if value is None:
                        continue
                    if what == "kind" and phrase == "switch" and (i == 0 or tokens[i + 1 : i + 2] in (["on"], ["off"], ["the"])):
                        continue  # 'switch' the verb, not 'a switch'

                    for j in range(i, i + size):
                        taken[j] = True
                    if what == "entity":
                        found.append(Mention(i, i + size, entity=value))  # type: ignore[arg-type]
                    elif what == "partial":
                        found.append(Mention(i, i + size, entity=value, exact=False))  # type: ignore[arg-type]
                    elif what == "area":
                        found.append(Mention(i, i + size, area=str(value)))
                    else:
                        found.append(Mention(i, i + size, kind=str(value)))
        return sorted(found, key=lambda m: m.start)
