"""The speech benchmark's test commands are sentences the demo home's grammar really holds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from device.bench.asr_commands import command_sample, demo_commands, home_registry, walk
from device.errors import ConfigError
from device.intent.language import HomeLanguage
from device.intent.templates import load_templates


@pytest.fixture(scope="module")
def language() -> HomeLanguage:
    return HomeLanguage(home_registry(), templates=load_templates("en"))


def test_sample_is_seeded_distinct_understood_and_spread_over_intents(language: HomeLanguage) -> None:
    sample = command_sample(language, 60, seed=7)
    sentences = [s for s, _ in sample]
    assert len(sample) == 60 and len(set(sentences)) == 60
    graph = language.graph()
    for sentence, intent in sample:
        assert graph.accepts(sentence), sentence
        decision = language.understand(sentence)
        assert decision.meaning is not None and decision.meaning.intent == intent, sentence
    # Round-robin: no intent has two sentences before every intent found has one.
    intents = [i for _, i in sample]
    first_round = len(set(intents))
    assert first_round >= 12 and len(set(intents[:first_round])) == first_round
    assert {"HassTurnOn", "HassTurnOff", "HassLightSet", "HassClimateSetTemperature"} <= set(intents)
    assert sample == command_sample(language, 60, seed=7)
    assert sample != command_sample(language, 60, seed=8)


def test_walks_follow_the_graph(language: HomeLanguage) -> None:
    graph = language.graph()
    rng = random.Random(1)
    walks = [w for w in (walk(graph, rng) for _ in range(50)) if w is not None]
    assert len(walks) >= 45 and all(graph.accepts(w) for w in walks)


def test_the_benchmark_takes_its_commands_from_the_home_file(tmp_path: Path) -> None:
    data = json.loads(Path("device/sim/demo_home.json").read_text(encoding="utf-8"))
    locks = [c for c in data["configs"] if c["topic"].split("/")[1] == "lock"]
    assert locks, "the demo home has a lock"
    only_locks = tmp_path / "locks.json"
    only_locks.write_text(json.dumps({"configs": locks}), encoding="utf-8")
    commands = demo_commands(30, seed=3, path=only_locks)
    # Timers, the time and the volume need no device; every command that acts on the home acts on the lock.
    lock_home = HomeLanguage(home_registry(only_locks), templates=load_templates("en"))
    calls = [d.call for d in map(lock_home.understand, commands) if d.call is not None]
    assert len(calls) >= 3 and {c.arguments.get("entity") for c in calls} == {"lock.front_door"}, commands
    assert any(c.name in ("lock", "unlock") for c in calls), commands
    with pytest.raises(ConfigError, match="no entity"):
        home_registry(_write(tmp_path / "empty.json", {"configs": []}))
    with pytest.raises(ConfigError, match="topic"):
        home_registry(_write(tmp_path / "bad.json", {"configs": [{"payload": {}}]}))


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
