"""The second wake stage: openWakeWord confirms what microWakeWord is unsure of.

A word with a `Confirm` runs its microWakeWord first stage at a low cutoff (`first_cutoff`). A
window mean over the word's packaged cutoff wakes the speaker at once, as before; one between the
two only wakes it when the openWakeWord model of the same phrase, a different network trained on
other data, scores the last `LOOK_MS` of audio over `cutoff`. Where the two models err on
different clips, the pair hears more owners than either alone at the same false wakes
(`voxhome bench wake`, "two-stage" column; the cutoffs are calibrated there on the tuning voices
and shipped in the wake bundle).

The confirming front end is costly to run always (melspectrogram + embedding every 80 ms), so it
is off until a first-stage score enters the unsure band: then it scores the audio it kept (the
last ~2.4 s: the look-back plus the embedding's 0.76 s of context) in one go, follows the stream
step by step while the band lasts, and goes quiet again `LOOK_MS` after the last unsure score.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.events import SAMPLE_RATE
from models.base import Scorer

_LOGGER = logging.getLogger(__name__)

LOOK_MS = 1500
"""The confirming score is the best over this much audio before the first stage's decision: the
openWakeWord models peak within ~0.5 s of the phrase's end, the micro models up to ~1 s later."""
CALIBRATED: dict[str, tuple[float, float]] = {"hey_jarvis": (0.35, 0.5), "alexa": (0.25, 0.8)}
"""Packaged word → (first_cutoff, cutoff), from `voxhome bench wake` on the TUNING voices (see the
README; 2026-12-03: held-out recall hey_jarvis 47 → 66 %, alexa 84 → 91 %, no false wake on ordinary
speech, noise or music, a few more on one-phoneme near misses); words missing here gain nothing from a second stage and keep one. A calibrated wake
bundle's manifests carry their own rule (`voxhome_confirm`)."""
CONTEXT_MS = 900
"""Audio kept beyond LOOK_MS so the first confirming steps see real, not silent, context."""


@dataclass(frozen=True, slots=True)
class Confirm:
    """A word's two-stage rule (from the wake bundle's manifest, or the calibrated defaults)."""

    first_cutoff: float
    """The first stage's low cutoff: a window mean over it is a candidate."""
    cutoff: float
    """The confirming model's score a candidate under the packaged cutoff needs."""
    model: Path
    """The confirming openWakeWord model (.tflite)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.first_cutoff < 1.0 or not 0.0 < self.cutoff < 1.0:
            raise ValueError("two-stage cutoffs must be between 0 and 1")


class OwwConfirmer:
    """openWakeWord scores for the words being confirmed, computed only while they are needed."""

    def __init__(self, models: Mapping[str, Path]) -> None:
        from models.wake import OwwFeatures, open_scorer

        self._front = OwwFeatures()
        self._fill = self._front.silence_embedding()
        self._scorers: dict[str, Scorer] = {w: open_scorer(p) for w, p in models.items()}
        self._windows = {w: deque([self._fill] * (s.input_shape[1] - 1), maxlen=s.input_shape[1])
                         for w, s in self._scorers.items()}
        self._kept: deque[bytes] = deque()
        self._kept_bytes = 0
        self._keep_bytes = (LOOK_MS + CONTEXT_MS) * SAMPLE_RATE // 1000 * 2
        self._origin_ms: int | None = None
        """Audio time of the first sample pushed (the detector's clock)."""
        self._samples = 0
        """Samples pushed since then."""
        self._front_origin = 0
        """Stream sample where the front end's step count starts."""
        self._active_until_ms = -1
        self._scores: dict[str, deque[tuple[int, float]]] = {w: deque() for w in self._scorers}
        self.activations = 0
        """How often the front end was woken (the benchmark reports the cost)."""

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._scorers)

    def _now_ms(self) -> int:
        return (self._origin_ms or 0) + self._samples * 1000 // SAMPLE_RATE

    def push(self, audio: bytes, timestamp_ms: int) -> None:
        """Every chunk of the stream, before the first stage scores it."""
        if self._origin_ms is None:
            self._origin_ms = timestamp_ms
        self._kept.append(audio)
        self._kept_bytes += len(audio)
        while self._kept and self._kept_bytes - len(self._kept[0]) >= self._keep_bytes:
            self._kept_bytes -= len(self._kept.popleft())
        self._samples += len(audio) // 2
        if self._active_until_ms < 0:
            return
        if self._now_ms() > self._active_until_ms:
            self._active_until_ms = -1  # the unsure band is over: back to costing nothing
            return
        self._score(self._front.push(audio))

    def best(self, word: str, end_ms: int) -> float:
        """The confirming model's best score for `word` over the LOOK_MS of audio up to `end_ms`
        (audio time, as the detector's)."""
        if word not in self._scorers:
            return 0.0
        if self._active_until_ms < 0:
            self._activate()
        self._active_until_ms = max(self._active_until_ms, end_ms + LOOK_MS)
        scores = self._scores[word]
        while scores and scores[0][0] <= end_ms - LOOK_MS:
            scores.popleft()
        return max((p for t, p in scores if t <= end_ms), default=0.0)

    def _activate(self) -> None:
        self.activations += 1
        kept = b"".join(self._kept)
        self._front.reset()
        for w in self._windows:
            self._windows[w].clear()
            self._windows[w].extend([self._fill] * (self._windows[w].maxlen - 1))  # type: ignore[operator]
            self._scores[w].clear()
        self._front_origin = self._samples - len(kept) // 2
        self._active_until_ms = self._now_ms() + LOOK_MS
        self._score(self._front.push(kept))

    def _score(self, steps: Iterable[tuple[np.ndarray, int]]) -> None:
        for embedding, end_sample in steps:
            end_ms = (self._origin_ms or 0) + (self._front_origin + end_sample) * 1000 // SAMPLE_RATE
            for word, scorer in self._scorers.items():
                window = self._windows[word]
                window.append(embedding)
                self._scores[word].append((end_ms, float(scorer.score(np.stack(window)[np.newaxis, :, :]))))

    def reset(self) -> None:
        self._kept.clear()
        self._kept_bytes = 0
        self._samples = 0
        self._origin_ms = None
        self._active_until_ms = -1
        for scores in self._scores.values():
            scores.clear()

    def close(self) -> None:
        for scorer in self._scorers.values():
            scorer.close()
