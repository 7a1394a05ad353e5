"""EfficientWord-Net confirmer traces: the phrase matcher's score near every unsure step, cached.

The second-stage option for a word with no useful openWakeWord twin (models/wake_confirm.py
`EwnConfirmer`): its score is the cosine similarity of the last 1.5 s's embedding to the word's
phrase as the TUNING voices say it (enrolled from text). A ResNet-50 window costs ~30-70 ms, so
only the windows the runner could ever compute are: those on its 200 ms grid within LOOK_MS
before a first-stage step whose window mean is over FLOOR (the lowest first cutoff the
calibration tries); elsewhere the confirmer sleeps and its score is never read.

Each window's similarity is kept per enrolment voice (the best over that voice's references), so
the replay scores a tuning clip without its own voice's references (leave one voice out: the
same TTS voice saying the same phrase is near-identical, which would flatter the calibration);
held-out clips and voiceless audio use every reference, as the device does. Cached as one npz
per clip under ~/.cache/voxhome/eval/wake/ewn_traces/<key>/, keyed by the references, the
embedding model and the first stage's models.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from device.bench.wake.dataset import Audio, wake_dir
from device.bench.wake.evaluate import Scored
from device.bench.wake.metrics import window_means
from device.bench.wake.nearmiss import PHRASES
from device.bench.wake.traces import Trace, models_key
from device.events import SAMPLE_RATE
from models.manifest import sha256_file
from models.wake import WakeWordSpec
from models.wake_confirm import LOOK_MS, phrase_window, window_ends
from models.wake_phrase import HOP, PhraseEmbedder, model_path
from models.wake_phrase_enrol import Enrolment, enrol

EWN_TRACE_VERSION = 1
FLOOR = 0.2
"""No first cutoff under this is tried (cascade.FIRST_GRID starts here), so no window is needed
further than LOOK_MS from a step over it."""


def confirm_name(word: str) -> str:
    """The model reference of a word's EfficientWord-Net confirmer: 'ewn:<its phrase>'."""
    return f"ewn:{PHRASES[word].text}"


def needed(micro: Trace, specs: Sequence[WakeWordSpec], words: Sequence[str]) -> np.ndarray:
    """Grid indices (window k ends at k·HOP) the runner could embed in this clip for `words`."""
    out: set[int] = set()
    for spec in specs:
        if spec.name not in words:
            continue
        means = window_means(micro.probs[spec.name], spec.window)
        for end in micro.end_ms[spec.name][means > FLOOR]:
            out.update(window_ends(float(end) - LOOK_MS, float(end)))
    return np.asarray(sorted(out), np.int64)


def similarities(pcm: np.ndarray, grid: np.ndarray, enrolments: dict[str, Enrolment], labels: dict[str, tuple[str, ...]],
                 embedder: PhraseEmbedder) -> dict[str, np.ndarray]:
    """word → [len(grid), voices] best cosine per enrolment voice at each grid window."""
    audio = np.asarray(pcm, np.float32) / 32768.0
    embeddings = [embedder.embed(phrase_window(audio, int(k) * HOP)) for k in grid]
    out = {}
    for word, enrolment in enrolments.items():
        voices = np.asarray(enrolment.voices)
        sims = np.stack(embeddings) @ enrolment.references.T if embeddings else np.zeros((0, len(voices)))
        out[word] = np.stack([sims[:, voices == v].max(axis=1) for v in labels[word]], axis=1) if len(grid) else \
            np.zeros((0, len(labels[word])))
    return out


class EwnTraceStore:
    """The EfficientWord-Net confirmer's traces of every clip, beside the first stage's."""

    def __init__(self, specs: Sequence[WakeWordSpec], root: Path | None = None) -> None:
        self.specs = tuple(specs)
        self._embedder = PhraseEmbedder()
        self.enrolments = {s.name: enrol(PHRASES[s.name].text, self._embedder) for s in self.specs}
        self.labels = {w: tuple(sorted(set(e.voices))) for w, e in self.enrolments.items()}
        digest = hashlib.sha256(f"{EWN_TRACE_VERSION}|{HOP}|{LOOK_MS}|{FLOOR}|{models_key(self.specs)}|"
                                f"{sha256_file(model_path())}".encode())
        for word, enrolment in self.enrolments.items():
            digest.update(f"|{word}:{','.join(self.labels[word])}:".encode())
            digest.update(np.ascontiguousarray(enrolment.references, np.float32).tobytes())
        self.key = digest.hexdigest()[:16]
        self.root = (root or wake_dir() / "ewn_traces") / self.key
        self.root.mkdir(parents=True, exist_ok=True)
        self.computed = 0
        self.windows = 0

    def get(self, item: Scored, load: Callable[[], Audio]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """word → (window end ms, [windows, voices] similarities) of one clip; computed once."""
        path = self.root / f"{item.clip.id}.npz"
        words = [w for w in self.enrolments if item.clip.kind != "wake" or w == item.clip.word]
        if path.exists():
            try:
                with np.load(path) as data:
                    return {w: (data["end_ms"], data[f"sim:{w}"]) for w in words}
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # torn by a killed run, or an older word list
        grid = needed(item.trace, self.specs, words)
        sims = similarities(load().pcm, grid, {w: self.enrolments[w] for w in words}, self.labels, self._embedder) if len(grid) \
            else {w: np.zeros((0, len(self.labels[w]))) for w in words}
        end_ms = grid * HOP * 1000 // SAMPLE_RATE
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, end_ms=end_ms, **{f"sim:{w}": s.astype(np.float32) for w, s in sims.items()})  # type: ignore[arg-type]
        os.replace(tmp, path)
        self.computed += 1
        self.windows += len(grid)
        return {w: (end_ms, sims[w]) for w in words}

    def scored(self, item: Scored, raw: dict[str, tuple[np.ndarray, np.ndarray]]) -> Scored:
        """The clip as the cascade replays it: per word, the score the device would see, leaving
        a tuning clip's own voice's references out."""
        ends, probs = {}, {}
        for word, (end_ms, sims) in raw.items():
            keep = np.asarray([v != item.clip.voice for v in self.labels[word]], bool)
            if item.clip.part != "tuning":
                keep[:] = True
            name = confirm_name(word)
            ends[name] = end_ms
            probs[name] = sims[:, keep].max(axis=1) if keep.any() and len(end_ms) else np.zeros(len(end_ms))
        return Scored(item.clip, Trace(item.clip.id, item.trace.seconds, item.trace.wake_end_s, ends, probs, {}))

    def close(self) -> None:
        self._embedder.close()
