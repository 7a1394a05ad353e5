"""The home's slot lists for hassil: names, areas, modes and presets from the registry. Pure.

Every entity is named by its name, its aliases and its id's object part, plus two spoken
variants when they still name exactly one entity: the name without its room ('lamp' for the
living room lamp) and with its kind word swapped ('kitchen lamp' for the kitchen light). The
value is the entity id; the context carries its domain (and device class) so templates can ask
for a kind of device (`requires_context: domain: light`), as in Home Assistant.
"""

from __future__ import annotations

import re

from hassil.intents import SlotList, TextSlotList

from device.tools.registry import Entity, Registry


def normalise(text: str) -> str:
    """Lower case, words only, any script: 'Küchenlicht' stays 'küchenlicht' (the registry's own
    ASCII key would make it 'k chenlicht', which nobody says)."""
    return " ".join(re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.casefold()))

_KIND_SWAPS = {"light": ("lamp",), "lamp": ("light",)}
"""Plurals are left out on purpose: 'the bedroom lights' means the room's lights, not one of them."""
_KIND_WORDS = frozenset({"light", "lights", "lamp", "lamps", "fan", "switch", "lock", "door", "blinds", "sensor", "thermostat"})


def name_variants(registry: Registry) -> dict[str, tuple[Entity, bool]]:
    """Spoken form → (entity, exact). Exact names win; a variant naming two entities is dropped."""
    exact: dict[str, set[str]] = {}
    for e in registry.entities():
        for n in e.names:
            exact.setdefault(normalise(n), set()).add(e.id)
    areas = {normalise(a) for a in registry.areas()}
    partial: dict[str, set[str]] = {}
    for e in registry.entities():
        for n in map(normalise, e.names):
            forms = set()
            for area in areas:
                if n.startswith(area + " "):
                    forms.add(n[len(area) + 1 :])
            words = n.split()
            if words and words[-1] in _KIND_SWAPS:
                forms |= {" ".join([*words[:-1], swap]) for swap in _KIND_SWAPS[words[-1]]}
            for form in forms:
                if form and form not in areas and form not in _KIND_WORDS:
                    partial.setdefault(form, set()).add(e.id)
    out: dict[str, tuple[Entity, bool]] = {}
    for text, ids in exact.items():
        if text and len(ids) == 1 and (entity := registry.get(next(iter(ids)))) is not None:
            out[text] = (entity, True)
    for text, ids in partial.items():
        if text not in exact and len(ids) == 1 and (entity := registry.get(next(iter(ids)))) is not None:
            out[text] = (entity, False)
    return out


def home_slot_lists(registry: Registry) -> dict[str, SlotList]:
    names = []
    for text, (entity, _exact) in sorted(name_variants(registry).items()):
        context = {"domain": entity.component}
        if entity.device_class:
            context["device_class"] = entity.device_class
        names.append((text, entity.id, context))
    modes = sorted({str(m) for e in registry.entities() if e.component == "climate" for m in (e.config.get("modes") or []) if isinstance(m, str)})
    presets = sorted({str(p) for e in registry.entities() if e.component == "fan" for p in (e.config.get("preset_modes") or []) if isinstance(p, str)})
    return {
        "name": TextSlotList.from_tuples(names, name="name"),
        "area": TextSlotList.from_tuples([(a, a) for a in registry.areas()], name="area"),
        # voxhome's registry has no floors yet; the list exists so HA's floor templates parse.
        "floor": TextSlotList.from_tuples([], name="floor"),
        "hvac_mode": TextSlotList.from_tuples([(_spoken_mode(m), m) for m in modes], name="hvac_mode"),
        "fan_preset": TextSlotList.from_tuples([(p.replace("_", " "), p) for p in presets], name="fan_preset"),
    }


def _spoken_mode(mode: str) -> str:
    return {"heat": "(heat|heating)", "cool": "(cool|cooling)", "fan_only": "fan only", "heat_cool": "heat cool"}.get(mode, mode.replace("_", " "))


def signature(registry: Registry) -> tuple[object, ...]:
    """Changes when anything the slot lists are built from changes."""
    return tuple((e.id, e.name, e.aliases, e.area, e.device_class, str(e.config.get("modes")), str(e.config.get("preset_modes"))) for e in registry.entities())
