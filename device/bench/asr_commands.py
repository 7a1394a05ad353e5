"""The speech benchmark's test commands: sentences the demo home really hears, from its word graph.

The demo home (device/sim/demo_home.json, or any discovery file of the same shape) is announced
into a `Registry`; its `HomeLanguage` builds the word graph that constrained decoding searches
(`device.intent.grammar_graph`). Random walks through that graph are sentences exactly as the
speaker can hear them; each is kept only if the language also understands it as a local command
(the graph is built per template, so it holds a few name/area combinations hassil then refuses).
The sample takes the intents in turn, so no intent with many templates (timers) crowds out the
rest.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from device.errors import ConfigError
from device.intent.grammar_graph import GrammarGraph
from device.intent.language import HomeLanguage
from device.sim.home import load_home
from device.tools.registry import Registry

DEMO_HOME = Path(__file__).resolve().parents[1] / "sim" / "demo_home.json"
LOCAL_KINDS = frozenset({"tool", "answer", "speaker", "timer"})
MAX_WORDS = 24
"""A walk longer than this is abandoned (no home command is; it guards a cycle in the graph)."""
STOP = 0.25
"""Chance to end a walk where a sentence may end but could go on ('turn on the light' [in here])."""


def home_registry(path: str | Path = DEMO_HOME) -> Registry:
    """The entities a discovery file ({"configs": [{"topic", "payload"}, …]}) announces."""
    data = load_home(path)
    registry = Registry()
    for config in data["configs"]:
        if not isinstance(config, dict) or not isinstance(config.get("topic"), str) or "payload" not in config:
            raise ConfigError("sim-home-file", f"{path}: every config needs a 'topic' and a 'payload'")
        payload = config["payload"]
        registry.handle(config["topic"], payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    if not registry.entities():
        raise ConfigError("sim-home-file", f"{path} announces no entity voxhome can drive")
    return registry


def walk(graph: GrammarGraph, rng: random.Random) -> str | None:
    """One random sentence of the graph, its fragments joined as spoken; None at a dead end."""
    state = rng.choice(graph.starts())
    words: list[str] = []
    while not graph.is_final(state) or (graph.arcs(state) and rng.random() > STOP):
        arcs = graph.arcs(state)
        if not arcs or len(words) > MAX_WORDS:
            return None
        fragment, spaced, state = rng.choice(arcs)
        if spaced or not words:
            words.append(fragment)
        else:
            words[-1] += fragment  # 'light' + 's'
    return " ".join(words) if words else None


def command_sample(language: HomeLanguage, count: int, seed: int = 7) -> tuple[tuple[str, str], ...]:
    """`count` distinct (sentence, intent) pairs, seeded: random walks the language understands as
    local, taken round-robin over intents (fewer only if the home can't say that many)."""
    graph = language.graph()
    rng = random.Random(seed)
    by_intent: dict[str, list[str]] = {}
    seen: set[str] = set()
    found = 0
    # A pool several times the sample, so that rare intents are in it; bounded for a tiny home.
    for _ in range(count * 60):
        if found >= count * 4:
            break
        sentence = walk(graph, rng)
        if sentence is None or sentence in seen:
            continue
        seen.add(sentence)
        decision = language.understand(sentence)
        if decision.kind not in LOCAL_KINDS or decision.meaning is None:
            continue
        by_intent.setdefault(decision.meaning.intent, []).append(sentence)
        found += 1
    out: list[tuple[str, str]] = []
    intents = sorted(by_intent)
    while len(out) < min(count, found):
        for intent in intents:
            if by_intent[intent] and len(out) < count:
                out.append((by_intent[intent].pop(0), intent))
    return tuple(out)


def demo_commands(count: int, seed: int = 7, path: str | Path = DEMO_HOME) -> tuple[str, ...]:
    """The benchmark's test commands: `command_sample` over the home of `path` (English sentences)."""
    return tuple(sentence for sentence, _ in command_sample(HomeLanguage(home_registry(path)), count, seed))
