"""A stand-in home command grammar for the speech benchmark: a few hundred plausible sentences.

The real grammar comes from the home's tools (device/tools); until the benchmark takes it from
there, this list covers the same kinds of command: lights on/off and brightness, thermostat
temperatures, locks, covers, fans, media and scenes, spread over several rooms.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOMS = ("kitchen", "living room", "bedroom", "bathroom", "office", "hallway", "garage", "dining room")
SCENES = ("movie night", "good morning", "good night", "dinner", "reading", "party")
LOCKS = ("front door", "back door", "garage door")
COVERS = ("blinds", "curtains", "shutters")


def home_commands() -> tuple[str, ...]:
    """Every sentence once, in a stable order (lower case, no punctuation, numbers as digits)."""
    out: list[str] = []
    for room in ROOMS:
        out += [f"turn on the {room} light", f"turn off the {room} light"]
        out += [f"set the {room} light to {p} percent" for p in (10, 25, 50, 75, 100)]
        out += [f"dim the {room} light", f"brighten the {room} light"]
    for room in ("living room", "bedroom", "office", "kitchen"):
        for cover in COVERS:
            out += [f"open the {room} {cover}", f"close the {room} {cover}"]
    for room in ("living room", "bedroom", "office"):
        out += [f"turn on the {room} fan", f"turn off the {room} fan", f"set the {room} fan to high", f"set the {room} fan to low"]
    out += [f"set the thermostat to {t} degrees" for t in range(16, 27)]
    out += ["turn up the heating", "turn down the heating", "turn off the heating", "what is the temperature inside"]
    for lock in LOCKS:
        out += [f"lock the {lock}", f"unlock the {lock}", f"is the {lock} locked"]
    out += [f"activate the {scene} scene" for scene in SCENES]
    out += ["turn off all the lights", "turn on all the lights", "play some music", "pause the music",
            "stop the music", "next song", "turn up the volume", "turn down the volume",
            "start the vacuum", "stop the vacuum", "turn on the coffee machine", "turn off the tv"]
    return tuple(dict.fromkeys(out))


def sample_commands(count: int = 48, pool: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """An evenly spread subset of the candidates, so every kind of command is in the test."""
    every = pool if pool is not None else home_commands()
    count = min(count, len(every))
    step = len(every) / count
    return tuple(every[int(i * step)] for i in range(count))


EXTRA_ROOMS = ("guest room", "nursery", "laundry room", "porch", "basement", "attic", "study", "patio",
               "kids room", "master bedroom", "upstairs hallway", "downstairs bathroom")


def candidate_pool(count: int, base: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """`count` distinct candidates (for timing the scorer): the base list, then more rooms' commands."""
    out = list(dict.fromkeys(base if base is not None else home_commands()))
    for room in EXTRA_ROOMS:
        for sentence in (f"turn on the {room} light", f"turn off the {room} light", f"dim the {room} light",
                         f"brighten the {room} light", *(f"set the {room} light to {p} percent" for p in range(5, 101, 5)),
                         f"open the {room} blinds", f"close the {room} blinds", f"turn on the {room} fan",
                         f"turn off the {room} fan", *(f"set the {room} thermostat to {t} degrees" for t in range(17, 25))):
            if len(out) >= count:
                return tuple(out[:count])
            if sentence not in out:
                out.append(sentence)
    return tuple(out[:count])


DEMO_HOME = Path(__file__).resolve().parents[1] / "sim" / "demo_home.json"


def demo_grammar(path: Path = DEMO_HOME) -> tuple[str, ...]:
    """The demo home's real command grammar, as the speech model scores it on the device."""
    # Imported here so the stand-in list stays usable without the home's modules.
    from device.intent.grammar import candidate_sentences
    from device.tools.registry import Registry

    registry = Registry()
    for config in json.loads(path.read_text(encoding="utf-8"))["configs"]:
        registry.handle(config["topic"], json.dumps(config["payload"]).encode())
    return tuple(dict.fromkeys(candidate_sentences(registry)))


def command_kind(sentence: str) -> str:
    """A coarse tool kind (the leading verb phrase), so the sample spreads over every kind."""
    words = sentence.split()
    if words[:1] == ["is"] or words[:1] == ["what"]:
        return "query"
    return " ".join(words[:2]) if words[:1] in (["turn"], ["switch"], ["make"], ["set"]) else words[0]


def seeded_sample(pool: tuple[str, ...], count: int, seed: int = 7) -> tuple[str, ...]:
    """A fixed, seeded, varied sample: round-robin over command kinds, random within a kind.

    Every kind (lock and unlock included) is represented before any kind gets a second sentence.
    """
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = {}
    for sentence in pool:
        by_kind.setdefault(command_kind(sentence), []).append(sentence)
    for group in by_kind.values():
        rng.shuffle(group)
    kinds = sorted(by_kind)
    out: list[str] = []
    count = min(count, len(pool))
    while len(out) < count:
        for kind in kinds:
            if by_kind[kind] and len(out) < count:
                out.append(by_kind[kind].pop())
    return tuple(out)
