"""Local understanding on the demo home: the issue's phrasings, numbers, unknown devices, grammar."""

from __future__ import annotations

import pytest

from device.bench.intent import accuracy
from device.intent import Understanding, candidate_sentences
from device.intent.numbers import words_to_digits
from device.tools.registry import Registry


@pytest.fixture
def understanding(registry: Registry) -> Understanding:
    return Understanding(registry)


@pytest.mark.parametrize(("text", "tool", "arguments"), [
    ("switch on the kitchen light", "turn_on", {"entity": "light.kitchen_light"}),
    ("kill the lights", "turn_off", {"area": "all", "domain": "light"}),
    ("dim the kitchen to 30", "set_brightness", {"area": "Kitchen", "domain": "light", "brightness": 30}),
    ("set the thermostat to 21 degrees", "set_temperature", {"entity": "climate.thermostat", "temperature": 21}),
    ("set the thermostat to twenty one degrees", "set_temperature", {"entity": "climate.thermostat", "temperature": 21}),
    ("is the front door locked", "get_state", {"entity": "lock.front_door"}),
    ("turn off all the lights in the bedroom", "turn_off", {"area": "Bedroom", "domain": "light"}),
    ("fan to sleep mode", "set_fan_preset", {"entity": "fan.bedroom_fan", "preset": "sleep"}),
])
def test_phrasings_from_the_issue(understanding: Understanding, text: str, tool: str, arguments: dict) -> None:
    decision = understanding.understand(text)
    assert decision.kind == "tool" and decision.call is not None
    assert (decision.call.name, decision.call.arguments) == (tool, arguments)
    assert decision.confidence >= 0.7


def test_a_bit_brighter_is_absolute_from_the_current_state(registry: Registry) -> None:
    registry.handle("zigbee2mqtt/kitchen_light", b'{"state": "ON", "brightness": 127}')
    decision = Understanding(registry).understand("a bit brighter")
    assert decision.call is not None
    # Only the kitchen light is on (50 %): ten points brighter, as an absolute value.
    assert decision.call.arguments == {"entity": "light.kitchen_light", "brightness": 60}


@pytest.mark.parametrize(("text", "message"), [
    ("turn on the sauna", "I don't know a sauna."),
    ("is the sauna on", "I don't know a sauna."),
    ("turn on the porch light", "I don't know a porch light."),
    ("turn on the lights in the garage", "There are no lights in the garage."),
])
def test_unknown_devices_are_rejected_not_guessed(understanding: Understanding, text: str, message: str) -> None:
    decision = understanding.understand(text)
    assert (decision.kind, decision.message, decision.call) == ("reject", message, None)


@pytest.mark.parametrize("text", ["what's the weather like", "set a timer for 5 minutes", "tell me a joke", "who wrote hamlet", ""])
def test_anything_else_goes_to_the_cloud(understanding: Understanding, text: str) -> None:
    assert understanding.understand(text).kind == "not_local"


def test_the_home_as_it_is_now(registry: Registry) -> None:
    assert Understanding(registry).understand("turn on the sauna").kind == "reject"
    registry.handle("homeassistant/switch/sauna/config", b'{"name": "Sauna", "cmd_t": "sauna/set"}')
    decision = Understanding(registry).understand("turn on the sauna")
    assert decision.call is not None and decision.call.arguments == {"entity": "switch.sauna"}


def test_number_words() -> None:
    assert words_to_digits("set it to twenty one point five".split()) == ["set", "it", "to", "21.5"]
    assert words_to_digits("a hundred percent".split()) == ["100", "percent"]
    assert words_to_digits("one hundred and five".split()) == ["105"]


def test_every_candidate_sentence_is_understood_locally(registry: Registry) -> None:
    understanding = Understanding(registry)
    sentences = candidate_sentences(registry)
    assert len(sentences) > 100
    wrong = [s for s in sentences if understanding.understand(s).kind != "tool"]
    assert wrong == []


def test_accuracy_table_on_the_demo_cases() -> None:
    result = accuracy(show_misses=False)
    n, ok, peer = result["total"]
    assert n >= 150
    assert ok / n >= 0.9 and ok > peer
