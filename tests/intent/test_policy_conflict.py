"""The free reading may veto a close home sentence: opposite directions, numbers it never said."""

from __future__ import annotations

import pytest

from device.intent.policy import choose, disagreement
from tests.home.conftest import demo_language, demo_registry


@pytest.mark.parametrize(("free", "sentence"), [
    ("Power up the kitchen light.", "power off the kitchen light"),
    ("Turn on the kitchen light.", "turn off the kitchen light"),
    ("turn the volume up", "turn the volume down"),
    ("and lock the front door", "unlock the front door"),
    ("open the garage door", "close the garage door"),
    ("change the kitchen light to save and I present", "change the kitchen light to 7 percent"),
    ("set the thermostat to twenty two", "set the thermostat to 21 degrees"),
])
def test_contradictions_are_found(free: str, sentence: str) -> None:
    assert disagreement(free, sentence) is not None


@pytest.mark.parametrize(("free", "sentence"), [
    ("Power of the bedroom light.", "power the bedroom light off"),  # 'of' is misheard, not opposite
    ("Set the thermostat to twenty one degrees", "set the thermostat to 21 degrees"),
    ("set the thermostat to 19 point five", "set the thermostat to 19.5 degrees"),
    ("set brightness to 50%", "set the brightness to 50 percent"),
    ("turn the kitchen light on", "turn on the kitchen light"),
    ("turn of the kitchen lied", "turn off the kitchen light"),
])
def test_mishearings_are_not_contradictions(free: str, sentence: str) -> None:
    assert disagreement(free, sentence) is None


def test_a_contradicted_home_sentence_does_not_act_however_close_its_score() -> None:
    language = demo_language(demo_registry())
    free = language.understand("power up the kitchen light")
    constrained = language.understand("power off the kitchen light")
    assert constrained.kind == "tool"
    choice = choose(free, constrained, gap=0.05)
    assert choice.verdict == "free" and "disagree" in choice.reason
    agreeing = choose(language.understand("turn of the kitchen lied"), constrained, gap=0.3)
    assert agreeing.verdict == "act" and agreeing.decision.call == constrained.call


def test_a_name_alone_is_not_a_command() -> None:
    # HA's '[the] {name}' turns a device on; spoken, a lost verb would switch it.
    language = demo_language(demo_registry())
    assert language.understand("the kitchen light").call is None
    assert language.understand("turn on the kitchen light").call is not None
