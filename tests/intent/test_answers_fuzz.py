"""Hypothesis: the spoken answer to "Do you want me to unlock the front door?" is a yes only when
the whole answer is clearly affirmative, in the configured language.

Properties, over generated answers rather than a list of examples:
- a yes holds only words of its language's affirmative template, no veto word and no question;
- an affirmative joined with any negation, hedge, delay or question, in either order, with any
  punctuation, is never a yes (English and German; English hedges with German configured);
- any text at all (random unicode, word salad of yes-, no- and hedge words) follows the first rule;
- clear affirmatives still confirm whatever their case, punctuation and spacing (so the
  properties above can't pass by refusing everything);
- the assistant judges the answer in the configured language (German), on its local question
  and on the cloud's.
"""

from __future__ import annotations

import re
from functools import cache

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.intent.answers import TEMPLATES, normalise, templates, yes_or_no

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|'[^\W\d_]+")


@cache
def affirm_words(language: str) -> frozenset[str]:
    """Every word the language's Affirm template can contain (its lead, affirm, polite and act rules)."""
    data = yaml.safe_load((TEMPLATES / f"{language}.yaml").read_text(encoding="utf-8"))
    rules = data["expansion_rules"]
    return frozenset(w for key in ("lead", "affirm", "polite", "act") for w in WORD.findall(rules[key].lower()))


AFFIRM = {
    "en": ["yes", "yeah", "sure", "okay", "ok", "alright", "of course", "yes please", "go ahead", "do it", "correct",
           "absolutely", "yep, do it", "certainly", "that's right", "confirm"],
    "de": ["ja", "ja bitte", "genau", "okay", "klar", "sicher", "natürlich", "in ordnung", "mach das", "los", "gerne",
           "richtig", "stimmt"],
}
QUALIFY = {
    "en": ["but not now", "not", "not sure", "I'm not sure", "hold on", "wait", "wait a second", "maybe", "maybe not",
           "perhaps", "probably", "later", "not yet", "no", "nope", "never mind", "cancel", "stop", "I don't know",
           "don't", "dunno", "hmm", "unless it's raining", "if you must", "why", "what", "or not", "no wait",
           "not really", "not okay", "isn't it", "shouldn't you", "I guess not", "hang on", "one moment"],
    "de": ["aber nicht jetzt", "nicht", "nicht sicher", "ich weiß nicht", "warte", "warte mal", "moment", "vielleicht",
           "eventuell", "später", "nein", "kein", "lieber nicht", "doch nicht", "abbrechen", "stopp", "warum", "was",
           "wenn es sein muss", "falls du willst", "unsicher", "aber", "keine ahnung"],
}
SEPARATORS = st.sampled_from([" ", ", ", ". ", "... ", " - ", "! ", "; ", " … ", ",", "  "])
ENDINGS = st.sampled_from(["", ".", "!", "?", "...", " ?", "?!", "??"])


def is_yes(text: str, language: str) -> bool:
    return yes_or_no(text, language) is True


def check_a_yes_is_clear(text: str, language: str) -> None:
    """If the answer confirms, it holds only the template's words, no veto word and no question."""
    if not is_yes(text, language):
        return
    cleaned = normalise(text)
    assert "?" not in cleaned and "¿" not in cleaned, text
    assert not templates(language).veto.search(cleaned), text
    extra = set(WORD.findall(cleaned)) - affirm_words(language)
    assert not extra, (text, extra)


CASINGS = st.sampled_from(["lower", "upper", "title", "keep"])


def casing(how: str, text: str) -> str:
    return {"lower": text.lower(), "upper": text.upper(), "title": text.title(), "keep": text}[how]


@st.composite
def hedged(draw: st.DrawFn, language: str, qualifiers: str) -> str:
    """An affirmative and a qualifier, in either order, maybe several, any punctuation."""
    parts = [draw(st.sampled_from(AFFIRM[language]))]
    for _ in range(draw(st.integers(1, 2))):
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(QUALIFY[qualifiers])))
    text = parts[0]
    for part in parts[1:]:
        text += draw(SEPARATORS) + part
    return casing(draw(CASINGS), text) + draw(ENDINGS)


@FUZZ
@given(text=hedged("en", "en"))
def test_english_yes_with_any_hedge_or_negation_is_never_a_yes(text: str) -> None:
    assert not is_yes(text, "en"), text


@FUZZ
@given(text=hedged("de", "de"))
def test_german_yes_with_any_hedge_or_negation_is_never_a_yes(text: str) -> None:
    assert not is_yes(text, "de"), text


@FUZZ
@given(text=hedged("de", "en"))
def test_german_configured_english_hedges_are_never_a_yes(text: str) -> None:
    """The user mixes languages ('okay, hold on'): words the German templates don't know never confirm."""
    assert not is_yes(text, "de"), text


@FUZZ
@given(language=st.sampled_from(["en", "de", "fr", "es", "nl"]), data=st.data())
def test_any_affirmative_asked_back_is_never_a_yes(language: str, data: st.DataObject) -> None:
    words = sorted(affirm_words(language))
    text = " ".join(data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=4)))
    cut = data.draw(st.integers(0, len(text)))
    mark = data.draw(st.sampled_from(["?", " ?", "¿", "? "]))
    assert not is_yes(text[:cut] + mark + text[cut:], language)


@FUZZ
@given(text=st.text(max_size=80), language=st.sampled_from(["en", "de", "fr", "es", "nl", "xx", "de-CH"]))
def test_random_text_is_a_yes_only_when_it_is_clearly_one(text: str, language: str) -> None:
    check_a_yes_is_clear(text, "de" if language.startswith("de") else "en" if language == "xx" else language)


@FUZZ
@given(language=st.sampled_from(["en", "de"]), data=st.data())
def test_word_salad_of_yes_no_and_hedge_words(language: str, data: st.DataObject) -> None:
    pool = sorted(affirm_words(language) | set(WORD.findall(" ".join(QUALIFY["en"] + QUALIFY["de"]).lower())))
    words = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    text = words[0]
    for word in words[1:]:
        text += data.draw(SEPARATORS) + word
    check_a_yes_is_clear(text + data.draw(ENDINGS), language)


@FUZZ
@given(language=st.sampled_from(["en", "de"]), data=st.data())
def test_clear_affirmatives_confirm_whatever_their_spelling(language: str, data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(AFFIRM[language]))
    text = casing(data.draw(CASINGS), text) + data.draw(st.sampled_from(["", ".", "!", "...", " ."]))
    pad = data.draw(st.sampled_from(["", " ", "  ", "\t", "\n"]))
    assert is_yes(pad + text + pad, language), text
