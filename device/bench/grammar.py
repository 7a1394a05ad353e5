"""`voxhome bench grammar`: constrained decoding during search, on a 200-entity home, beside free decoding.

The home is the e2e evaluation home (54 devices) grown to 200 entities with 16 more rooms of
realistic devices (a ceiling light, a lamp, blinds, a radiator… per room), announced by MQTT
discovery into a real `Registry`. From it and the sentence templates the bench builds the word
graph (`device.intent.grammar_graph`) and the token search (`models.asr.grammar_search`) and
prints:

- the sentences the home can hear (path count, never enumerated), graph build time and memory;
- on rendered speech (TUNING voices only, clean condition) of in-grammar commands: the median
  decode time of the grammar search and of free greedy decoding on the same encoder output in the
  same run, their ratio (target ≤ 1.5), the memory the grammar costs (target ≤ 50 MB), and how
  often each gets the spoken sentence exactly (free: after normalising its transcript).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.bench.conditions import condition, render
from device.bench.e2e_home import build_home, discovery_file
from device.bench.voices import SAMPLE_RATE, TUNING_VOICES, Voice
from device.intent.grammar_graph import GrammarGraph, build_graph, normalise_words
from device.intent.slots import home_slot_lists
from device.intent.templates import Templates, load_templates
from device.tools.registry import Registry

ROOMS = (
    "Master Bedroom", "Guest Room", "Dining Room", "Laundry Room", "Basement", "Attic", "Patio", "Study",
    "Nursery", "Pantry", "Upstairs Hallway", "Downstairs Toilet", "Utility Room", "Conservatory", "Playroom", "Driveway",
)
KINDS = (
    ("light", "ceiling light"), ("light", "lamp"), ("light", "spotlights"), ("switch", "plug"), ("fan", "fan"),
    ("cover", "blinds"), ("climate", "radiator"), ("sensor", "temperature"), ("switch", "tv"), ("sensor", "humidity"),
)
ENTITIES = 200
HOME_INTENTS = frozenset({
    "HassTurnOn", "HassTurnOff", "HassLightSet", "HassClimateSetTemperature", "HassClimateGetTemperature",
    "HassGetState", "HassSetPosition", "HassFanSetSpeed", "HassMediaPause", "HassMediaUnpause", "HassMediaNext",
    "HassMediaPrevious", "HassSetVolume", "VoxToggle", "VoxLightStep", "VoxStopCover", "VoxSetHvacMode",
    "VoxTemperatureStep", "VoxFanStep", "VoxSetFanPreset", "VoxColorTempStep",
})
"""The intents that act on the home (what the speaker decodes locally)."""
PATTERNS = (
    "turn on the {light}", "turn off the {light}", "switch off the {switch}", "turn on the {fan}",
    "set the {light} to {pct} percent", "open the {cover}", "close the {cover}", "set the {climate} to {temp} degrees",
    "what is the temperature in the {area}", "turn off the lights in the {area}", "turn on the {area} lights",
    "lock the front door", "set the {fan} to {pct} percent", "dim the {light}",
)
"""Spoken commands, filled with the home's names (each checked to be in the grammar)."""
OUTSIDE = (
    "what is the capital of france", "tell me a joke about penguins", "how far away is the moon",
    "who won the football match last night", "remind me to call my sister", "what does the word serendipity mean",
    "play something relaxing", "how do you make pancakes", "is it going to rain this weekend", "translate good morning into spanish",
    "what time does the bakery open", "order more coffee beans",
)
"""Things a speaker hears that aren't home commands (for the rejection signal, not tuned on)."""


@dataclass(frozen=True, slots=True)
class Built:
    graph: GrammarGraph
    sentences: int
    build_ms: float
    traced_mb: float


def grown_home() -> list[dict[str, Any]]:
    """The e2e home's discovery configs, then the generated rooms' (more than 200 entities)."""
    configs: list[dict[str, Any]] = list(discovery_file(build_home())["configs"])
    for i, (room, (component, kind)) in enumerate((r, k) for r in ROOMS for k in KINDS):
        obj = f"{room}_{kind}".lower().replace(" ", "_")
        name = f"{room} {kind}".capitalize()
        payload: dict[str, Any] = {"name": name, "unique_id": f"grown_{i}", "state_topic": f"home/{obj}/state",
                                   "device": {"identifiers": [f"grown_{obj}"], "name": name, "suggested_area": room}}
        if component != "sensor":
            payload["command_topic"] = f"home/{obj}/set"
        if component == "sensor":
            payload |= {"device_class": kind, "unit_of_measurement": "°C" if kind == "temperature" else "%"}
        elif component == "cover":
            payload |= {"device_class": "shade", "set_position_topic": f"home/{obj}/position/set", "position_topic": f"home/{obj}/position"}
        elif component == "climate":
            payload |= {"modes": ["off", "heat"], "mode_command_topic": f"home/{obj}/mode/set", "temperature_command_topic": f"home/{obj}/target/set",
                        "min_temp": 7, "max_temp": 30, "temp_step": 0.5}
        elif component == "fan":
            payload |= {"percentage_command_topic": f"home/{obj}/speed/set"}
        configs.append({"topic": f"homeassistant/{component}/{obj}/config", "payload": payload})
    return configs


def grown_registry(entities: int = ENTITIES) -> Registry:
    """A registry fed by discovery until it holds `entities` entities."""
    registry = Registry()
    for config in grown_home():
        if len(registry.entities()) >= entities:
            break
        registry.handle(config["topic"], json.dumps(config["payload"]).encode())
    return registry


def build(registry: Registry, intents: Collection[str] | None = HOME_INTENTS, templates: Templates | None = None) -> Built:
    templates = templates or load_templates("en")
    lists = home_slot_lists(registry)
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    graph = build_graph(templates.intents, lists, intents)
    build_ms = (time.perf_counter() - t0) * 1000
    traced = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    return Built(graph, graph.count_sentences(), build_ms, traced)


def commands(registry: Registry, graph: GrammarGraph, n: int, seed: int = 13) -> tuple[list[str], list[str]]:
    """`n` seeded commands from PATTERNS over the home's own names; (in grammar, refused by it)."""
    rng = random.Random(seed)
    names: dict[str, list[str]] = {}
    for e in registry.entities():
        names.setdefault(e.component, []).append(e.name.lower())
    fill = {"light": names["light"], "switch": names["switch"], "fan": names["fan"], "cover": names["cover"],
            "climate": names["climate"], "area": sorted(a.lower() for a in registry.areas())}
    good: list[str] = []
    bad: list[str] = []
    for _ in range(n * 20):
        if len(good) >= n:
            break
        pattern = rng.choice(PATTERNS)
        text = pattern.format(**{k: rng.choice(v) for k, v in fill.items()}, pct=rng.choice(range(10, 101, 5)), temp=rng.choice((18, 19, 20, 21, 22, 23)))
        if text in good or text in bad:
            continue
        (good if graph.accepts(text) else bad).append(text)
    return good, bad


def command_audio(text: str, voice: Voice, seed: int = 0, cond: str = "clean") -> np.ndarray:
    """A rendered command as the segmenter hands it over: from just before the speech to the end, float32."""
    utterance = render(text, voice, condition(cond), seed=seed)
    start = max(0, int((utterance.command_start - 0.2) * SAMPLE_RATE))
    audio: np.ndarray = utterance.audio[start:].astype(np.float32) / 32768.0
    return audio


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", type=int, default=30, help="spoken in-grammar commands (one TUNING voice each, round robin)")
    parser.add_argument("--entities", type=int, default=ENTITIES)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--all-intents", action="store_true", help="every template of the language, not only the home intents")
    parser.add_argument("--condition", default="clean", help="acoustic condition of the spoken commands (device.bench.conditions)")
    parser.add_argument("--outside", type=int, default=len(OUTSIDE), help="out-of-grammar utterances for the rejection signal")


def run(args: argparse.Namespace) -> int:
    from models.asr.factory import ensure_asr_bundle
    from models.asr.grammar_search import GrammarSearch
    from models.asr.heap import trim
    from models.asr.runner import WhisperOnnx

    out = sys.stdout
    runner = WhisperOnnx.load(ensure_asr_bundle())
    registry = grown_registry(args.entities)
    templates = load_templates("en")  # the speaker holds these anyway (hassil matching); not the graph's cost
    intents = None if args.all_intents else HOME_INTENTS
    good, bad = commands(registry, build(registry, intents, templates).graph, args.commands)
    voices = [TUNING_VOICES[i % len(TUNING_VOICES)] for i in range(len(good))]
    spoken = [(text, voice.label, command_audio(text, voice, seed=i, cond=args.condition)) for i, (text, voice) in enumerate(zip(good, voices, strict=True))]
    if not spoken:
        out.write("no commands to speak\n")
        return 1
    # The runner's own working set (the longest utterance through encoder and free decoding) is
    # the baseline: what is left above it is the graph's, the search's and their caches'.
    longest = max((a for _, _, a in spoken), key=len)
    runner.decode_free(runner.encode(longest), len(longest) / SAMPLE_RATE)
    gc.collect()
    trim()
    rss0 = rss_mb()
    built = build(registry, intents, templates)
    t0 = time.perf_counter()
    search = GrammarSearch(runner, built.graph, beam=args.beam)
    setup_ms = (time.perf_counter() - t0) * 1000
    stats = built.graph.stats
    out.write(f"home: {len(registry.entities())} entities, {len(registry.areas())} areas; "
              f"{'all' if args.all_intents else len(HOME_INTENTS)} intents, {stats.templates} templates "
              f"({stats.wildcard_templates} with a wildcard left out, {stats.dead_templates} with nothing to say here)\n")
    out.write(f"sentences (paths): {built.sentences:,}\n")
    out.write(f"graph: {stats.nodes:,} nodes, {stats.arcs:,} arcs, {stats.sub_grammars} shared sub-grammars; "
              f"built in {built.build_ms:.0f} ms, {built.traced_mb:.1f} MB (tracemalloc)\n")
    out.write(f"search: {search.token_count} grammar tokens of {runner.tokenizer.first_special}; set up in {setup_ms:.0f} ms\n")
    for text in bad:
        out.write(f"  not in the grammar (pattern skipped): {text}\n")
    free_ms: list[float] = []
    grammar_ms: list[float] = []
    free_right = grammar_right = 0
    gaps: list[float] = []
    for text, label, audio in spoken:
        cross = runner.encode(audio)
        t0 = time.perf_counter()
        free = runner.decode_free(cross, len(audio) / SAMPLE_RATE)
        t1 = time.perf_counter()
        found = search.search(cross)
        t2 = time.perf_counter()
        free_ms.append((t1 - t0) * 1000)
        grammar_ms.append((t2 - t1) * 1000)
        free_text = runner.tokenizer.decode(free.tokens)
        best = found[0].text if found else ""
        free_right += normalise_words(free_text) == normalise_words(text)
        grammar_right += normalise_words(best) == normalise_words(text)
        if found:
            gaps.append(free.sum_logprob / max(1, free.scored) - found[0].mean_logprob)
        out.write(f"  {label:24} {text!r}: free {free_text.strip()!r} {free_ms[-1]:.0f} ms | grammar {best.strip()!r} {grammar_ms[-1]:.0f} ms\n")
    gc.collect()
    trim()
    rss1 = rss_mb()
    outside: list[float] = []
    for i, text in enumerate(OUTSIDE[: args.outside]):
        voice = TUNING_VOICES[i % len(TUNING_VOICES)]
        audio = command_audio(text, voice, seed=i, cond=args.condition)
        cross = runner.encode(audio)
        free = runner.decode_free(cross, len(audio) / SAMPLE_RATE)
        found = search.search(cross)
        outside.append(free.sum_logprob / max(1, free.scored) - (found[0].mean_logprob if found else -20.0))
        out.write(f"  outside {voice.label:16} {text!r}: grammar {found[0].text.strip() if found else ''!r} gap {outside[-1]:.2f}\n")
    med_free, med_grammar = statistics.median(free_ms), statistics.median(grammar_ms)
    ratio = med_grammar / med_free
    n = len(good)
    out.write(f"\n{'decoder':10} {'median ms':>9} {'right':>7}\n")
    out.write(f"{'free':10} {med_free:9.1f} {free_right / n:7.0%}\n")
    out.write(f"{'grammar':10} {med_grammar:9.1f} {grammar_right / n:7.0%}\n")
    out.write(f"ratio of medians: {ratio:.2f} (target ≤ 1.5); first grammar search (cold caches): {grammar_ms[0]:.0f} ms\n")
    out.write(f"memory: graph + search + caches after the run: {rss1 - rss0:+.1f} MB RSS (target ≤ 50 MB)\n")
    out.write("mean per-token log-prob, free decoding minus the grammar's best (the rejection signal):\n")
    out.write(f"  in the grammar:  median {statistics.median(gaps):.2f}, 90th percentile {np.percentile(gaps, 90):.2f}, max {max(gaps):.2f}\n")
    if outside:
        out.write(f"  outside it:      min {min(outside):.2f}, 10th percentile {np.percentile(outside, 10):.2f}, median {statistics.median(outside):.2f}\n")
    return 0 if ratio <= 1.5 and rss1 - rss0 <= 50 else 1
