"""Near misses of a wake phrase from its text (models/wake_phrase_nearmiss.py, real espeak-ng) and
the negative-enrolment rule (models/wake_phrase.py PhraseSpec.accepts); the bench's scoring of
both (device/bench/wake_phrase.py)."""

from __future__ import annotations

import numpy as np
import pytest

from device.bench.wake_phrase import MARGINS, Embedded, Scored, choose_margin, references, scored
from models.wake_phrase import DEFAULT_MARGIN, PhraseMatcher, PhraseSpec
from models.wake_phrase_enrol import Enrolment
from models.wake_phrase_nearmiss import distance, near_misses, phonemes, respellings

# Phrases no part of voxhome was tuned on: the rule has to work from the text alone.
PHRASES = ["hey jarvis", "good morning house", "alexa", "okay toaster"]


@pytest.mark.parametrize("phrase", PHRASES)
def test_every_near_miss_is_one_phoneme_or_one_word_away(phrase: str) -> None:
    misses = near_misses(phrase)
    assert misses == near_misses(phrase)  # deterministic: enrolment and bench agree
    assert phrase not in misses and len(set(misses)) == len(misses) >= 4
    words = phrase.split()
    said = dict(zip(words, phonemes(words), strict=True))
    changed_words = set()
    for miss in misses:
        other = miss.split()
        if len(other) < len(words):  # a word dropped, the rest kept in order
            assert other in (words[1:], words[:-1])
            continue
        diff = [(a, b) for a, b in zip(words, other, strict=True) if a != b]
        assert len(diff) == 1, miss
        word, respelled = diff[0]
        assert distance(said[word], phonemes([respelled])[0]) == 1, (word, respelled)
        changed_words.add(word)
    assert changed_words == set(words)  # every word of the phrase gets near misses
    if len(words) > 1:
        assert " ".join(words[1:]) in misses


def test_a_respelling_that_sounds_the_same_is_not_a_near_miss() -> None:
    # 'hay' is proposed (e → a) but espeak says it as 'hey': it would be the wake phrase itself.
    assert "hay" in respellings("hey")
    assert phonemes(["hay"]) == phonemes(["hey"])
    assert not any(m.startswith("hay ") for m in near_misses("hey jarvis"))
    # A part too short to say alone is not a near miss of its own ("hey").
    assert "hey" not in near_misses("hey jarvis")


def test_phoneme_distance() -> None:
    assert distance(("k", "@", "m", "p"), ("k", "@", "m")) == 1
    assert distance(("k", "@"), ("g", "@")) == 1
    assert distance(("a", "b"), ("a", "b")) == 0
    assert distance((), ("a", "b")) == 2


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_a_window_nearer_a_near_miss_does_not_wake() -> None:
    rng = np.random.default_rng(0)
    phrase, miss = unit(rng.standard_normal((2, 2048)))
    refs, misses = unit(phrase + 0.01 * rng.standard_normal((4, 2048))), unit(miss + 0.01 * rng.standard_normal((4, 2048)))
    near_miss_window = unit(0.6 * phrase + miss)  # over the threshold for the phrase, nearer the miss
    phrase_window = unit(phrase + 0.3 * miss)
    plain = PhraseSpec("p", refs, threshold=0.3)
    guarded = PhraseSpec("p", refs, threshold=0.3, near_misses=misses, margin=0.0)
    assert plain.accepts(near_miss_window) is not None  # the threshold alone wakes on it
    assert guarded.accepts(near_miss_window) is None
    assert guarded.accepts(phrase_window) == pytest.approx(plain.score(phrase_window))
    # A margin above the gap rejects the phrase too; an empty set of near misses is the threshold alone.
    gap = guarded.score(phrase_window) - float(np.max(misses @ phrase_window))
    assert PhraseSpec("p", refs, 0.3, near_misses=misses, margin=gap + 0.01).accepts(phrase_window) is None
    assert PhraseSpec("p", refs, 0.3, near_misses=misses[:0]).accepts(near_miss_window) is not None
    matcher = PhraseMatcher(guarded)
    assert matcher.push(near_miss_window, 1000) is None
    assert matcher.push(phrase_window, 1200) is not None
    assert PhraseSpec("p", refs).margin == DEFAULT_MARGIN


def test_bench_scores_leave_a_tuning_voice_out_and_choose_one_margin() -> None:
    rng = np.random.default_rng(1)
    vecs = unit(rng.standard_normal((6, 2048)))
    enrolment = Enrolment("p", vecs[:2], ("a", "b"), vecs[2:5], ("a", "b", "b"), ("x", "y", "x"))
    pos, neg = references(enrolment, "a")
    assert np.array_equal(pos, vecs[1:2]) and np.array_equal(neg, vecs[3:5])
    pos, neg = references(enrolment, "", ["x"])
    assert len(pos) == 2 and np.array_equal(neg, vecs[[2, 4]])
    emb = Embedded(vecs[[0, 2]].astype(np.float16), np.array([700, 900]), 1.0)
    s = scored(emb, references(enrolment), "v", "clean")
    assert s.wakes(0.9, None) and s.wakes(0.9, 0.5) and not s.wakes(0.9, 1.5)
    # recall falls with the margin: the largest within the allowed loss is chosen
    clips = [Scored("v", "c", np.array([0.8]), np.array([0.8 - gap])) for gap in (-0.055, -0.005, 0.045, 0.095)]
    assert choose_margin(clips, 0.5, 0.0) == -0.06
    assert choose_margin(clips, 0.5, 0.25) == -0.01
    assert choose_margin(clips, 0.5, 1.0) == MARGINS[-1]
