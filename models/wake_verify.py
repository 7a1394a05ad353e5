"""Second-stage wake verification: Whisper reads the audio that woke the first stage.

The always-on first stage (microWakeWord, models/wake.py) can run at a low cutoff when each of its
hits is checked here: the window that ends at the detection is encoded once, decoded freely and
decoded constrained to the word's phrase (a tiny `WordGraph` of its spellings; the phrase is the
whole window, nothing before or after it). The gap — the free reading's mean log-probability per
token minus the phrase's — is small when the audio says the phrase (the phrase *is* what Whisper
would write, give or take punctuation) and grows when the audio says something else, a near miss
("okay nahpoo") included. A hit is accepted when the gap is at most the word's threshold.

Pure model code: audio in, verdict out. Thresholds come from `voxhome bench wake --verify`
(device/bench/wake/verify.py), calibrated on the tuning voices only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from device.errors import ModelError
from models.asr.grammar_search import GrammarSearch
from models.asr.runner import EncoderOutput, WhisperOnnx

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 1.5
"""Audio verified: the last 1.5 s before the detection hold the whole phrase (the longest,
"hey mycroft", is ~1 s in the bench's voices; the detector fires 0.1-0.3 s after it ends)."""
SILENCE_PEAK = 1e-3
PHRASES: dict[str, tuple[str, ...]] = {
    # Spellings Whisper tiny.en writes for each phrase (lowercase words; the search ignores
    # punctuation and follows any split of a word into tokens, so "Okay, Nabu." is "okay nabu").
    "okay_nabu": ("okay nabu", "ok nabu"),
    "hey_jarvis": ("hey jarvis",),
    "alexa": ("alexa",),
    "hey_mycroft": ("hey mycroft", "hey my croft"),
}
DEFAULT_THRESHOLD = 0.9
"""Nats per token the phrase may trail the free reading by; a word without a calibrated value."""
THRESHOLDS: dict[str, float] = {"okay_nabu": 0.85, "hey_jarvis": 0.05, "alexa": 1.75, "hey_mycroft": 0.5}
"""Per word at its packaged first-stage cutoff: the highest two-stage recall at ≤ 0.5 false wakes/h
on the TUNING voices (`voxhome bench wake-verify`, 2026-12-03). They cost much of the recall
(held-out okay_nabu 50 → 26 %, hey_mycroft 58 → 12 %): see the README before turning this on."""

_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True, slots=True)
class Verdict:
    word: str
    accepted: bool
    gap: float
    """Free mean log-prob per token − the phrase's (nats); +inf when the phrase can't fit at all."""
    free_text: str
    phrase_text: str
    ms: float
    """Time the check took (encoder + both decodes)."""
    sum_gap: float = float("inf")
    """Free log-probability − the phrase's, whole sequences (nats): the likelihood ratio, which a
    per-token mean would bias toward phrases split into more tokens."""


class PhraseGraph:
    """The `WordGraph` of a few whole phrases: a trie of their words, every phrase ends the sentence."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self._arcs: list[dict[str, int]] = [{}]
        self._final: set[int] = set()
        for phrase in phrases:
            words = _WORD.findall(phrase.lower())
            if not words:
                raise ModelError("wake-verify-config", f"wake phrase {phrase!r} has no words")
            node = 0
            for w in words:
                if w not in self._arcs[node]:
                    self._arcs.append({})
                    self._arcs[node][w] = len(self._arcs) - 1
                node = self._arcs[node][w]
            self._final.add(node)

    def starts(self) -> Sequence[int]:
        return (0,)

    def arcs(self, state: int) -> Sequence[tuple[str, bool, int]]:
        return tuple((w, True, nxt) for w, nxt in self._arcs[state].items())

    def is_final(self, state: int) -> bool:
        return state in self._final

    def vocabulary(self) -> Collection[str]:
        return frozenset(w for arcs in self._arcs for w in arcs)


def phrases_for(word: str) -> tuple[str, ...]:
    """The spellings of a word: the table's, else its name read as words ('hey_rhasspy' → 'hey rhasspy')."""
    if word in PHRASES:
        return PHRASES[word]
    name = word.split(":", 1)[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    words = _WORD.findall(name.replace("_", " ").lower())
    if not words:
        raise ModelError("wake-verify-config", f"no wake phrase known for {word!r}")
    return (" ".join(words),)


class WakeVerifier:
    def __init__(self, runner: WhisperOnnx, words: Sequence[str], thresholds: Mapping[str, float] | None = None,
                 window_s: float = WINDOW_S) -> None:
        self.runner = runner
        self.window_samples = int(window_s * SAMPLE_RATE)
        self.thresholds = {w: (thresholds or {}).get(w, THRESHOLDS.get(w, DEFAULT_THRESHOLD)) for w in words}
        # Built once per word (~0.3 s each): the allowed-token tries of a two-word grammar are tiny.
        self._searches: dict[str, GrammarSearch] = {w: runner.prepare(PhraseGraph(phrases_for(w))) for w in words}

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._searches)

    def score(self, word: str, audio: np.ndarray) -> Verdict:
        """Check one first-stage hit: `audio` is int16 or float mono 16 kHz ending at the detection."""
        if word not in self._searches:
            raise ModelError("wake-verify-config", f"the verifier was not set up for {word!r}")
        samples = np.asarray(audio)
        if samples.ndim != 1:
            raise ModelError("wake-verify-audio", f"expected mono samples, got shape {samples.shape}")
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        samples = samples.astype(np.float32, copy=False)[-self.window_samples :]
        started = time.perf_counter()
        if samples.size < 1600 or float(np.abs(samples).max(initial=0.0)) < SILENCE_PEAK:
            return Verdict(word, False, float("inf"), "", "", 0.0)
        cross = self.runner.encode(samples)
        free_text, free_mean, free_sum = self._free(cross, samples.size / SAMPLE_RATE)
        hyps = self._searches[word].search(cross, n_best=1)
        ms = (time.perf_counter() - started) * 1000
        if not hyps:
            return Verdict(word, False, float("inf"), free_text, "", ms)
        gap = free_mean - hyps[0].mean_logprob
        return Verdict(word, gap <= self.thresholds[word], gap, free_text, hyps[0].text, ms, free_sum - hyps[0].logprob)

    def _free(self, cross: EncoderOutput, seconds: float) -> tuple[str, float, float]:
        free = self.runner.decode_free(cross, seconds)
        text = self.runner.tokenizer.decode(list(free.tokens))
        return text, free.sum_logprob / max(1, free.scored), free.sum_logprob
