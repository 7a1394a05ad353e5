"""Whatever the decoder scores, a constrained reading is a sentence of the graph, word for word.

The search is driven through its decoder-step interface (`GrammarSearch.run`) by random score
tables over Whisper's real vocabulary and tokenizer, on a real (small) hassil graph. The tables
are skewed the ways noisy audio skews Whisper: punctuation, tokens without a leading space, and
an early end-of-text all get boosted, since those are where a token can slip across a word
boundary the graph doesn't have ("room" "," "spotlights" reads as the word "roomspotlights").
"""

from __future__ import annotations

import numpy as np
import pytest
from hassil import Intents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.intent.grammar_graph import GrammarGraph, build_graph
from models.asr.grammar_search import PUNCTUATION, GrammarSearch, token_texts
from models.asr.runner import WhisperOnnx

BEAMS = (1, 2, 4)


@pytest.fixture(scope="module")
def graph() -> GrammarGraph:
    intents = Intents.from_dict({
        "language": "en",
        "intents": {
            "On": {"data": [{"sentences": ["turn (on|off) [the] {name}", "is the {name} on", "switch on the {area} light[s]"]}]},
            "Set": {"data": [{"sentences": ["set [the] {name} to {pct} percent", "set the {area} radiator to {temp} degrees"]}]},
            "Door": {"data": [{"sentences": ["open the garage door[s]", "what's the temperature [in the {area}]"]}]},
        },
        "lists": {
            "name": {"values": ["porch light", "kitchen light", "kid's room lamp", "utility room spotlights", "tv"]},
            "area": {"values": ["kitchen", "living room", "porch"]},
            "pct": {"range": {"from": 0, "to": 100, "step": 5}},
            "temp": {"range": {"from": 15, "to": 25, "fractions": "halves"}},
        },
    })
    return build_graph(intents)


@pytest.fixture(scope="module")
def searches(runner: WhisperOnnx, graph: GrammarGraph) -> dict[int, GrammarSearch]:
    texts = token_texts(runner.tokenizer)
    return {beam: GrammarSearch(runner, graph, beam=beam, texts=texts) for beam in BEAMS}


class RandomSteps:
    """A decoder whose logits are a seeded random table plus per-class boosts."""

    def __init__(self, runner: WhisperOnnx, seed: int, scale: float, boosts: np.ndarray) -> None:
        self.rng = np.random.default_rng(seed)
        self.scale = scale
        self.boosts = boosts
        self.size = runner.tokenizer.vocab_size

    def _table(self, rows: int) -> np.ndarray:
        return (self.rng.standard_normal((rows, self.size)) * self.scale + self.boosts).astype(np.float32)

    def start(self) -> np.ndarray:
        return self._table(1)

    def next(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        assert len(parents) == len(tokens) > 0
        return self._table(len(tokens))


@pytest.fixture(scope="module")
def classes(runner: WhisperOnnx) -> dict[str, np.ndarray]:
    """Token ids by the kind of text they carry (the boosts' targets)."""
    texts = token_texts(runner.tokenizer)
    punctuation = [i for i, t in enumerate(texts) if t and set(t.strip()) <= PUNCTUATION | {"%"} and t.strip()]
    joined = [i for i, t in enumerate(texts) if t and t[0].isalnum()]
    return {"punctuation": np.array(punctuation), "joined": np.array(joined), "eot": np.array([runner.tokenizer.eot])}


def boosts(runner: WhisperOnnx, classes: dict[str, np.ndarray], punctuation: float, joined: float, eot: float) -> np.ndarray:
    out = np.zeros(runner.tokenizer.vocab_size, np.float32)
    out[classes["punctuation"]] += punctuation
    out[classes["joined"]] += joined
    out[classes["eot"]] += eot
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from((0.5, 2.0, 6.0)), beam=st.sampled_from(BEAMS),
       punctuation=st.sampled_from((0.0, 4.0, 12.0)), joined=st.sampled_from((0.0, 4.0, 12.0)), eot=st.sampled_from((0.0, 6.0)))
def test_every_reading_is_a_sentence_of_the_graph_whatever_the_scores(
        runner: WhisperOnnx, graph: GrammarGraph, searches: dict[int, GrammarSearch], classes: dict[str, np.ndarray],
        seed: int, scale: float, beam: int, punctuation: float, joined: float, eot: float) -> None:
    steps = RandomSteps(runner, seed, scale, boosts(runner, classes, punctuation, joined, eot))
    for hypothesis in searches[beam].run(steps, n_best=5, max_tokens=40):
        assert graph.accepts(hypothesis.text), hypothesis.text
        assert runner.tokenizer.decode(hypothesis.tokens) == hypothesis.text
        assert hypothesis.logprob == pytest.approx(sum(hypothesis.token_logprobs))


def test_random_scores_do_reach_sentences_and_punctuation(
        runner: WhisperOnnx, graph: GrammarGraph, searches: dict[int, GrammarSearch], classes: dict[str, np.ndarray]) -> None:
    """The property above is not vacuous: the same kind of tables end sentences, with punctuation
    between words, and the search follows the graph's own joins ('light' 's')."""
    found = []
    for seed in range(40):
        steps = RandomSteps(runner, seed, 2.0, boosts(runner, classes, 6.0 if seed % 2 else 0.0, 4.0, 0.0))
        found += searches[4].run(steps, n_best=5, max_tokens=40)
    texts = [h.text for h in found]
    assert len(texts) >= 40
    assert any(any(mark in t.strip()[:-1] for mark in ",;:?!") for t in texts)  # punctuation inside a sentence
    assert all(graph.accepts(t) for t in texts)


def test_after_punctuation_the_next_word_needs_its_space(runner: WhisperOnnx, searches: dict[int, GrammarSearch]) -> None:
    search = searches[4]
    said = search.advance(search.start, " turn on the utility room")
    comma = search.advance(said, ",")
    assert comma and not search.advance(comma, "spotlights")  # 'roomspotlights' is no word of the graph
    assert search.advance(comma, " spotlights") and search.allowed(search.advance(comma, " spotlights")).end
    assert not search.advance(search.advance(search.advance(search.start, " set the tv to 50"), ","), "%")
    assert search.allowed(search.advance(search.start, " set the tv to 50%")).end
    assert search.allowed(search.advance(search.start, " set the kitchen radiator to 21.5 degrees.")).end
    half = search.advance(search.start, " set the kitchen radiator to 21.")
    assert not search.advance(half, "degrees") and not search.advance(half, "5degrees")
    assert search.advance(search.start, " switch on the porch lights")
    assert not search.advance(search.start, " turn on the kid's roomlamp")
