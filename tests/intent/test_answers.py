"""A spoken answer to "are you sure?" is a yes only when it clearly means yes."""

from __future__ import annotations

import itertools

import pytest

from device.intent.answers import yes_or_no

AFFIRM = ("yes", "yes please", "yeah go ahead", "sure", "okay", "do it")
# Hedges, negations and questions built as a class: a clear yes followed or preceded by a
# qualifier must never confirm.
QUALIFIERS = ("but not now", "hold on", "wait", "I'm not sure", "not yet", "or maybe not")
HEDGED = [f"{a}, {q}" for a, q in itertools.product(AFFIRM, QUALIFIERS)] + [f"{q}, {a}" for a, q in itertools.product(AFFIRM, QUALIFIERS)]
NEVER_YES = ["I'm not sure", "not okay", "that is not correct", "okay, hold on", "sure?", "yes?", "is it safe?",
             "I don't think so", "no", "nope, cancel", "maybe", "", "what"] + HEDGED


@pytest.mark.parametrize("text", AFFIRM)
def test_clear_affirmatives_confirm(text: str) -> None:
    assert yes_or_no(text) is True


@pytest.mark.parametrize("text", NEVER_YES)
def test_hedges_negations_and_questions_never_confirm(text: str) -> None:
    assert yes_or_no(text) is not True


@pytest.mark.parametrize("text,language", [("ja bitte", "de"), ("oui, vas-y", "fr"), ("sí, por favor", "es")])
def test_other_languages_confirm(text: str, language: str) -> None:
    assert yes_or_no(text, language) is True
    assert yes_or_no(text + " aber nicht jetzt" if language == "de" else text + "?", language) is not True
