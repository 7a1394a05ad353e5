"""The second wake stage: another model of the phrase confirms what microWakeWord is unsure of.

A word with a `Confirm` runs its microWakeWord first stage at a low cutoff (`first_cutoff`). A
window mean over the word's packaged cutoff wakes the speaker at once, as before; one between the
two only wakes it when a second model of the same phrase scores the last `LOOK_MS` of audio over
`cutoff`. The second model is either openWakeWord's model of the phrase (a different network
trained on other data; `OwwConfirmer`) or, for a word with no useful openWakeWord twin,
EfficientWord-Net's embedding of the last 1.5 s matched against the phrase as the TUNING voices
say it (models/wake_phrase.py, enrolled from text; `EwnConfirmer`). Where the two models err on
different clips, the pair hears more owners than either alone at the same false wakes
(`voxhome bench wake`, "TWO STAGES"; which confirmer and the cutoffs are calibrated there on the
tuning voices and shipped in the wake bundle).

The confirming front end is costly to run always (melspectrogram + embedding every 80 ms), so it
is off until a first-stage score enters the unsure band: then it scores the audio it kept (the
last ~2.4 s: the look-back plus the embedding's 0.76 s of context) in one go, follows the stream
step by step while the band lasts, and goes quiet again `LOOK_MS` after the last unsure score.
The EfficientWord-Net confirmer sleeps the same way (a ResNet-50 window costs ~30-70 ms here).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import ModelError
from device.events import SAMPLE_RATE
from models.base import Scorer
from models.wake_phrase import HOP, HOP_S, WINDOW, PhraseEmbedder
from models.wake_phrase_enrol import enrol

_LOGGER = logging.getLogger(__name__)

LOOK_MS = 1500
"""The confirming score is the best over this much audio before the first stage's decision: the
openWakeWord models peak within ~0.5 s of the phrase's end, the micro models up to ~1 s later."""
CALIBRATED: dict[str, tuple[float, float, str]] = {"hey_jarvis": (0.35, 0.5, "oww:hey_jarvis"),
                                                   "alexa": (0.25, 0.8, "oww:alexa")}
"""Packaged word → (first_cutoff, cutoff, confirming model: 'oww:<name>' or 'ewn:<phrase>'), from `voxhome bench wake` on the TUNING voices (see the
README; 2026-12-03: held-out recall hey_jarvis 47 → 66 %, alexa 84 → 91 %, no false wake on ordinary
speech, noise or music, a few more on one-phoneme near misses); words missing here gain nothing from a second stage and keep one. A calibrated wake
bundle's manifests carry their own rule (`voxhome_confirm`)."""
EMBEDDING_SIZE = 2048
"""EfficientWord-Net's embedding."""
CONTEXT_MS = 900
"""Audio kept beyond LOOK_MS so the first confirming steps see real, not silent, context."""


@dataclass(frozen=True, slots=True)
class Confirm:
    """A word's two-stage rule (from the wake bundle's manifest, or the calibrated defaults)."""

    first_cutoff: float
    """The first stage's low cutoff: a window mean over it is a candidate."""
    cutoff: float
    """The confirming model's score a candidate under the packaged cutoff needs."""
    model: Path | None
    """The confirming openWakeWord model (.tflite), or None for an EfficientWord-Net `phrase`."""
    phrase: str = ""
    """The phrase EfficientWord-Net matches (enrolled from text), when `model` is None."""
    references: Path | None = None
    """The phrase's reference embeddings as the wake bundle ships them (.npy, [n, 2048]), so the
    device matches what calibration measured; None: enrolled from the phrase at start-up."""

    verify_all: bool = False
    """Candidates over the packaged cutoff need the confirming model's yes too (a verifier that
    knows the near misses the first stage is sure of; `voxhome bench wake` calibrates it)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.first_cutoff < 1.0 or not 0.0 < self.cutoff < 1.0:
            raise ValueError("two-stage cutoffs must be between 0 and 1")
        if (self.model is None) == (not self.phrase):
            raise ValueError("a second stage confirms with an openWakeWord model or a phrase, exactly one")


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


def window_ends(first_ms: float, last_ms: float, origin_ms: int = 0) -> range:
    """The EfficientWord-Net window grid (every HOP of the stream from `origin_ms`): the indices
    k whose window ends at origin + k·HOP_S in (first_ms, last_ms]."""
    hop_ms = HOP_S * 1000
    return range(max(1, int((first_ms - origin_ms) // hop_ms) + 1), int((last_ms - origin_ms) // hop_ms) + 1)


def phrase_window(audio: np.ndarray, end: int) -> np.ndarray:
    """The 1.5 s window of float audio `audio` (sample 0 = stream start) ending at sample `end`,
    silent before the stream began."""
    window = np.zeros(WINDOW, np.float32)
    piece = audio[max(0, end - WINDOW):max(0, end)]
    window[WINDOW - len(piece):] = piece
    return window


def load_references(path: Path) -> np.ndarray:
    """A wake bundle's reference embeddings of a phrase; a bad file is a clear error."""
    try:
        refs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ModelError("model-manifest", f"phrase references {path} unreadable: {err}") from None
    if refs.ndim != 2 or refs.shape[0] == 0 or refs.shape[1] != EMBEDDING_SIZE:
        raise ModelError("model-manifest", f"phrase references {path}: expected [n, {EMBEDDING_SIZE}], got {list(refs.shape)}")
    return np.asarray(refs, np.float32)


class EwnConfirmer:
    """EfficientWord-Net similarity to each word's enrolled phrase, computed only while needed.

    The last 1.5 s is embedded at every HOP of the stream (the phrase matcher's grid) that lies in
    the LOOK_MS before an unsure first-stage step, and the score is the best cosine over the
    phrase's references. The references are the phrase said by the TUNING voices
    (models/wake_phrase_enrol.py, cached by phrase), so a word's phrase is all it needs."""

    def __init__(self, phrases: Mapping[str, str], embedder: PhraseEmbedder | None = None,
                 references: Mapping[str, Path] | None = None) -> None:
        self._embedder = embedder or PhraseEmbedder()
        shipped = references or {}
        self._refs = {w: load_references(shipped[w]) if w in shipped else enrol(p, self._embedder).references
                      for w, p in phrases.items()}
        self._hop = HOP
        self._keep = WINDOW + LOOK_MS * SAMPLE_RATE // 1000 + HOP
        self._audio = np.zeros(0, np.float32)
        self._origin_ms: int | None = None
        self._samples = 0
        self._next = 1
        """The next grid index not yet embedded."""
        self._active_until_ms = -1
        self._scores: dict[str, deque[tuple[int, float]]] = {w: deque() for w in self._refs}
        self.activations = 0
        self.windows = 0
        """Windows embedded (each ~30-70 ms of ResNet-50 on this box)."""

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._refs)

    def _now_ms(self) -> int:
        return (self._origin_ms or 0) + self._samples * 1000 // SAMPLE_RATE

    def push(self, audio: bytes, timestamp_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = timestamp_ms
        samples = np.frombuffer(audio, "<i2").astype(np.float32) / 32768.0
        self._audio = np.concatenate([self._audio, samples])[-self._keep:]
        self._samples += len(samples)
        if self._active_until_ms < 0:
            return
        if self._now_ms() > self._active_until_ms:
            self._active_until_ms = -1
            return
        self._embed_up_to(self._samples // self._hop)

    def best(self, word: str, end_ms: int) -> float:
        if word not in self._refs:
            return 0.0
        if self._active_until_ms < 0:
            self.activations += 1
            grid = window_ends(end_ms - LOOK_MS, self._now_ms(), self._origin_ms or 0)
            self._next = max(self._next, grid.start)
            self._active_until_ms = self._now_ms()
            self._embed_up_to(self._samples // self._hop)
        self._active_until_ms = max(self._active_until_ms, end_ms + LOOK_MS)
        scores = self._scores[word]
        while scores and scores[0][0] <= end_ms - LOOK_MS:
            scores.popleft()
        return max((p for t, p in scores if t <= end_ms), default=0.0)

    def _embed_up_to(self, last: int) -> None:
        base = self._samples - len(self._audio)  # stream sample of self._audio[0]
        while self._next <= last:
            end = self._next * self._hop
            embedding = self._embedder.embed(phrase_window(self._audio, end - base))
            self.windows += 1
            end_ms = (self._origin_ms or 0) + end * 1000 // SAMPLE_RATE
            for word, refs in self._refs.items():
                self._scores[word].append((end_ms, float(np.max(refs @ embedding))))
            self._next += 1

    def reset(self) -> None:
        self._audio = np.zeros(0, np.float32)
        self._origin_ms = None
        self._samples = 0
        self._next = 1
        self._active_until_ms = -1
        for scores in self._scores.values():
            scores.clear()

    def close(self) -> None:
        self._embedder.close()


class Confirmers:
    """The second stage of every word that has one: openWakeWord or EfficientWord-Net per word,
    each model loaded once and asleep until one of its words is unsure."""

    def __init__(self, rules: Mapping[str, Confirm]) -> None:
        oww = {w: r.model for w, r in rules.items() if r.model is not None}
        ewn = {w: r.phrase for w, r in rules.items() if r.model is None}
        shipped = {w: r.references for w, r in rules.items() if r.model is None and r.references is not None}
        self._parts: list[OwwConfirmer | EwnConfirmer] = []
        if oww:
            self._parts.append(OwwConfirmer(oww))
        if ewn:
            self._parts.append(EwnConfirmer(ewn, references=shipped))
        self._by_word = {w: part for part in self._parts for w in part.words}
        self._order = tuple(rules)

    @property
    def words(self) -> tuple[str, ...]:
        return self._order

    @property
    def activations(self) -> int:
        return sum(part.activations for part in self._parts)

    def part(self, word: str) -> OwwConfirmer | EwnConfirmer:
        return self._by_word[word]

    def push(self, audio: bytes, timestamp_ms: int) -> None:
        for part in self._parts:
            part.push(audio, timestamp_ms)

    def best(self, word: str, end_ms: int) -> float:
        part = self._by_word.get(word)
        return part.best(word, end_ms) if part is not None else 0.0

    def reset(self) -> None:
        for part in self._parts:
            part.reset()

    def close(self) -> None:
        for part in self._parts:
            part.close()
