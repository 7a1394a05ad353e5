"""The home's command grammar as candidate sentences, for a speech model to score. Pure.

A constrained decoder (issue "speech model") scores each candidate against the audio and picks the
best; the text then goes through `Understanding` like any transcript. The list is generated from
the registry, so it always matches the home as it is now.
"""

from __future__ import annotations

from device.tools.registry import Registry

_PERCENTS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def candidate_sentences(registry: Registry, *, temperatures: range = range(16, 27)) -> list[str]:
    out: list[str] = []
    for e in registry.entities():
        name = e.name.lower()
        match e.component:
            case "light" | "switch" | "fan":
                out += [f"turn on the {name}", f"turn off the {name}", f"switch on the {name}", f"switch off the {name}"]
                if e.component == "light":
                    out += [f"dim the {name} to {p} percent" for p in _PERCENTS]
                    out += [f"make the {name} brighter", f"make the {name} dimmer"]
                if e.component == "fan":
                    out += [f"set the {name} to {p} percent" for p in _PERCENTS]
                    out += [f"set the {name} to {p}" for p in e.config.get("preset_modes") or [] if isinstance(p, str)]
            case "lock":
                out += [f"lock the {name}", f"unlock the {name}", f"is the {name} locked"]
            case "cover":
                out += [f"open the {name}", f"close the {name}", f"stop the {name}"]
            case "climate":
                out += [f"set the {name} to {t} degrees" for t in temperatures]
                out += [f"set the {name} to {m} mode" for m in e.config.get("modes") or [] if isinstance(m, str) and m != "off"]
                out += [f"turn off the {name}", "make it warmer", "make it cooler"]
            case "scene":
                out += [f"activate {name}", f"{name}"]
            case "sensor" | "binary_sensor":
                out += [f"what is the {name}", f"is the {name} open" if e.device_class == "door" else f"what is the {name}"]
        if e.component in ("light", "switch", "fan", "lock", "cover", "climate"):
            out.append(f"is the {name} on" if e.component in ("light", "switch", "fan") else f"what is the {name} set to")
    for area in registry.areas():
        a = area.lower()
        if registry.in_area(area, "light"):
            out += [f"turn on the lights in the {a}", f"turn off the lights in the {a}", f"turn off the {a} lights"]
            out += [f"dim the {a} to {p}" for p in _PERCENTS]
        if registry.in_area(area, "sensor"):
            out.append(f"what is the temperature in the {a}")
    out += ["turn off all the lights", "turn on all the lights", "kill the lights", "a bit brighter", "a bit dimmer"]
    return list(dict.fromkeys(out))
