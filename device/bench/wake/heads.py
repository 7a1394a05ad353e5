"""Verifier heads trained on the wake set's TUNING part, scored as a second stage.

Each clip's openWakeWord embeddings (models/wake.py `OwwFeatures`, one 96-d vector per 80 ms,
exactly as the confirmer computes them) are cached once (`EmbeddingStore`). A word's head
(models/wake_head.py) learns from windows of 16 of them:

- positives: the word's TUNING phrases, the windows that end from 40 ms before to 360 ms after
  the phrase (every condition, alone and before a command);
- negatives: every window of the TUNING negatives (speech, near misses, noise, music; ordinary
  audio every second window, near misses all), the other words' phrases, and the windows of the
  word's own clips that end 1.4 s or more after the phrase (the command alone).

Two things keep the report honest. The near misses are split by their TEXT into two halves, and
the heads train on one half only (`trained_on`): the held-out table shows the false wakes on
near misses that no head saw said by anyone, beside all of them. And the rule's cutoffs are
calibrated on out-of-fold scores: the tuning voices are split in two, each half scored by a
head trained on the other half, so calibration never sees a head's score of its own training
audio. The held-out part is scored by the head trained on all the tuning audio, the one that
ships.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.bench.wake.dataset import Audio, Clip, wake_dir
from device.bench.wake.evaluate import Scored
from device.bench.wake.nearmiss import PHRASES, near_misses
from device.bench.wake.traces import Trace
from device.events import SAMPLE_RATE
from models.manifest import sha256_file
from models.wake import OwwFeatures, oww_models_dir
from models.wake_head import DIM, STEPS, export, score_windows, train

EMBEDDING_VERSION = 1
POSITIVE_BAND_MS = (-40, 360)
"""Windows ending this close to the phrase's end hold all of it (the embedding sees 0.76 s more)."""
COMMAND_AFTER_MS = 1400
"""A window ending this long after the phrase is mostly the command: a negative."""


@dataclass(frozen=True, slots=True)
class Embeddings:
    end_ms: np.ndarray
    """end (ms) of each 80 ms step, as the openWakeWord traces' steps"""
    vectors: np.ndarray
    """[steps, 96] float32"""


def head_name(word: str) -> str:
    """The confirming model's file in a wake bundle (and its trace name here)."""
    return f"{word}.head.onnx"


class EmbeddingStore:
    """openWakeWord embeddings of every clip, computed once and cached (float16 npz)."""

    def __init__(self, root: Path | None = None) -> None:
        models = oww_models_dir()
        digest = hashlib.sha256(f"{EMBEDDING_VERSION}|{importlib.metadata.version('pyopen-wakeword')}".encode())
        for name in ("melspectrogram.tflite", "embedding_model.tflite"):
            digest.update(sha256_file(models / name).encode())
        self.root = (root or wake_dir() / "embeddings") / digest.hexdigest()[:16]
        self.root.mkdir(parents=True, exist_ok=True)
        self._front: OwwFeatures | None = None
        self.silence: np.ndarray | None = None
        self.computed = 0

    def _features(self) -> OwwFeatures:
        if self._front is None:
            self._front = OwwFeatures()
        return self._front

    def silence_embedding(self) -> np.ndarray:
        """What openWakeWord windows are filled with before the stream starts (cached too)."""
        if self.silence is None:
            path = self.root / "silence.npy"
            if path.exists():
                self.silence = np.load(path)
            else:
                self.silence = np.asarray(self._features().silence_embedding(), np.float32)
                np.save(path, self.silence)
        return self.silence

    def get(self, clip: Clip, load: Callable[[], Audio]) -> Embeddings:
        path = self.root / f"{clip.id}.npz"
        if path.exists():
            try:
                with np.load(path) as data:
                    return Embeddings(data["end_ms"], data["vectors"].astype(np.float32))
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a torn write from a killed run
        front = self._features()
        front.reset()
        steps = list(front.push(np.asarray(load().pcm, "<i2").tobytes()))
        end_ms = np.asarray([s * 1000 // SAMPLE_RATE for _, s in steps], np.int64)
        vectors = np.stack([e for e, _ in steps]).astype(np.float32) if steps else np.zeros((0, DIM), np.float32)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, end_ms=end_ms, vectors=vectors.astype(np.float16))
        os.replace(tmp, path)
        self.computed += 1
        return Embeddings(end_ms, vectors.astype(np.float16).astype(np.float32))


def windows(emb: Embeddings, silence: np.ndarray) -> np.ndarray:
    """[steps, 16, 96]: at each step the last 16 embeddings, silence before the clip began (as
    the runner's windows start)."""
    padded = np.concatenate([np.tile(silence, (STEPS - 1, 1)), emb.vectors])
    view = np.lib.stride_tricks.sliding_window_view(padded, (STEPS, DIM))
    return np.asarray(view.reshape(len(emb.vectors), STEPS, DIM))


def near_miss_text(clip: Clip) -> str:
    """The near miss said in a near-miss clip (the carrier sentence around it removed)."""
    said = [m for m in near_misses(clip.word) if m in clip.text] if clip.word in PHRASES else []
    return max(said, key=len) if said else clip.text


def trained_on(clip: Clip) -> bool:
    """Whether the heads may train on this near miss's text: half the texts, chosen by hash."""
    return int(hashlib.sha256(near_miss_text(clip).encode()).hexdigest(), 16) % 2 == 0


def fold(clip: Clip, tuning_voices: Sequence[str]) -> int:
    """0 or 1: the tuning voices alternate between folds; voiceless clips go by seed."""
    if clip.voice:
        return tuning_voices.index(clip.voice) % 2 if clip.voice in tuning_voices else 0
    return (clip.seed // 2) % 2


def training_windows(items: Sequence[tuple[Clip, float, Embeddings]], word: str, silence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) for `word`'s head from (clip, wake end s, embeddings) of the
    TUNING part (the caller picks which)."""
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = []
    for clip, wake_end_s, emb in items:
        if clip.part != "tuning" or not len(emb.vectors):
            continue
        win = windows(emb, silence)
        if clip.kind == "wake" and clip.word == word:
            rel = emb.end_ms - 1000 * wake_end_s
            pos.append(win[(rel >= POSITIVE_BAND_MS[0]) & (rel <= POSITIVE_BAND_MS[1])])
            neg.append(win[rel >= COMMAND_AFTER_MS])
        elif clip.kind == "wake":
            neg.append(win[::2])
        elif clip.kind == "near_miss":
            if trained_on(clip):
                neg.append(win)
        else:
            neg.append(win[::2])
    empty = np.zeros((0, STEPS, DIM), np.float32)
    return (np.concatenate(pos) if pos else empty), (np.concatenate(neg) if neg else empty)


@dataclass(frozen=True, slots=True)
class HeadSet:
    """Per word: the shipped head (all tuning audio) and the traces the cascade replays."""

    paths: dict[str, Path]
    scored: list[Scored]
    """Every clip with a trace per word's head: tuning clips by the out-of-fold head, held-out
    clips by the shipped one."""


def build(clips: Sequence[Clip], load: Callable[[Clip], Audio], wake_end: dict[str, float], tuning_voices: Sequence[str],
          words: Sequence[str], out: Path | None = None, log: Callable[[str], object] | None = None) -> HeadSet:
    if len(set(tuning_voices)) < 2:
        if log:
            log("  verifier heads skipped: out-of-fold scores need at least 2 tuning voices\n")
        return HeadSet({}, [])
    store = EmbeddingStore()
    silence = store.silence_embedding()
    emb = {c.id: store.get(c, lambda c=c: load(c)) for c in clips}  # type: ignore[misc]
    rows = [(c, wake_end.get(c.id, -1.0), emb[c.id]) for c in clips]
    out = out or wake_dir() / "heads" / store.root.name
    paths: dict[str, Path] = {}
    probs: dict[str, dict[str, np.ndarray]] = {c.id: {} for c in clips}
    for word in words:
        name = head_name(word)
        heads: dict[str, Path] = {}
        for label, keep in (("fold0", lambda c: fold(c, tuning_voices) == 0), ("fold1", lambda c: fold(c, tuning_voices) == 1),
                            ("all", lambda c: True)):
            pos, neg = training_windows([r for r in rows if keep(r[0])], word, silence)
            path = out / label / name
            export(train(pos, neg, seed=len(label)), path)
            heads[label] = path
            if log:
                log(f"  head {word} {label}: {len(pos)} positive / {len(neg)} negative windows\n")
        paths[word] = heads["all"]
        # A tuning clip is scored by the head that never trained on its voice (out of fold).
        by_head: dict[str, list[tuple[Clip, Embeddings]]] = {label: [] for label in heads}
        for clip, _, e in rows:
            label = "all" if clip.part != "tuning" else ("fold1" if fold(clip, tuning_voices) == 0 else "fold0")
            by_head[label].append((clip, e))
        for label, members in by_head.items():
            if not members:
                continue
            scores = score_windows(heads[label], np.concatenate([windows(e, silence) for _, e in members]))
            at = 0
            for clip, e in members:
                probs[clip.id][name] = scores[at:at + len(e.vectors)]
                at += len(e.vectors)
    scored = [Scored(c, Trace(c.id, 0.0, wake_end.get(c.id, -1.0), {head_name(w): emb[c.id].end_ms for w in words},
                              probs[c.id], {})) for c in clips]
    return HeadSet(paths, scored)
