"""Wake phrases from text: a few-shot matcher over EfficientWord-Net's speech embeddings.

A phrase written in the config ("hey computer") is enrolled with no training: it is spoken by
our TTS voices, each rendering embedded by EfficientWord-Net's ResNet-50 ArcFace model (1.5 s of
64 log-mel filterbanks → a unit 2048-d vector; models/wake_phrase_enrol.py), and at run time the
last 1.5 s of audio is embedded every `HOP_S` and matched by cosine similarity against those
references. A window whose audio is quiet is not embedded at all (the energy gate), so a silent
room costs a few vector operations per hop instead of ~8 ms of ResNet.

We run the package's qint8 ONNX file with our own session (models/onnx.py: one thread) and reuse
its feature code (`eff_word_net.audio_utils.logfbank`); its engine module needs pyaudio, which a
speaker has no use for.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import ModelError
from device.events import SAMPLE_RATE, Detection
from models.onnx import check_inputs, open_session

_LOGGER = logging.getLogger(__name__)

WINDOW = int(1.5 * SAMPLE_RATE)
"""The model's input: 1.5 s (149 frames of 25 ms every 10 ms)."""
HOP_S = 0.2
"""How often the window is scored: 8 ms of ResNet per 200 ms is ~4 % of a core while speech
lasts; a phrase is ~0.6-1.2 s, so some window holds it whole within 0.1 s of a reference's
placement (measured in `voxhome bench wake-phrase`)."""
HOP = int(HOP_S * SAMPLE_RATE)
GATE_DBFS = -50.0
"""The energy gate: the loudest 100 ms of the newest hop must reach this (a quiet room is ~-60
dBFS, speech at 2 m ~-30) before the window is embedded."""
DEFAULT_THRESHOLD = 0.50
"""Cosine similarity to the nearest reference: the lowest with ≤ 1 false wake/h on the tuning
part of `voxhome bench wake-phrase` (3 phrases, 21 min of tuning negatives each; see README)."""
DEFAULT_MARGIN = -0.04
"""Negative enrolment: a window must also be at least this much nearer (in cosine similarity) the
phrase's nearest reference than its nearest near-miss reference (models/wake_phrase_nearmiss.py).
Chosen on the tuning part of `voxhome bench wake-phrase`, one value for every phrase (see README)."""
MODEL_FILE = "models/resnet_50_arc/slim_93%_accuracy_72.7390%_qint8.onnx"


def model_path() -> Path:
    # Found without importing the package: we only want its model file.
    spec = importlib.util.find_spec("eff_word_net")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model-missing", "the efficientword-net package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ModelError("model-missing", f"efficientword-net has no {MODEL_FILE}")
    return path


def features(window: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] audio of WINDOW samples → [149, 64] log filterbanks (the package's own)."""
    from eff_word_net.audio_utils import logfbank

    feats = logfbank(window, samplerate=SAMPLE_RATE, winlen=0.025, winstep=0.01, nfilt=64, nfft=512, preemph=0.0)
    return np.asarray(feats, dtype=np.float32)


class PhraseEmbedder:
    """1.5 s of audio → its unit embedding (one ONNX session, one thread)."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or model_path()
        self._session = open_session(path)
        check_inputs(self._session, {"input": [1, 1, 149, 64]}, str(path))
        self.runs = 0
        """How many windows were embedded (the gate's saving is checked against this)."""

    def embed(self, window: np.ndarray) -> np.ndarray:
        if window.shape != (WINDOW,):
            raise ModelError("model-shape", f"a phrase window is {WINDOW} samples, got {window.shape}")
        self.runs += 1
        out = self._session.run(None, {"input": features(window)[np.newaxis, np.newaxis]})[0]
        vec = np.asarray(out, dtype=np.float32).reshape(-1)
        return vec / (np.linalg.norm(vec) + 1e-9)

    def close(self) -> None:
        del self._session


def loud_enough(hop: np.ndarray) -> bool:
    """The energy gate over the newest hop (float32 audio)."""
    step = SAMPLE_RATE // 10
    usable = len(hop) // step * step
    if usable == 0:
        return False
    rms = np.sqrt(np.mean(hop[:usable].reshape(-1, step) ** 2, axis=1)).max()
    return bool(20 * np.log10(rms + 1e-9) >= GATE_DBFS)


class WindowStream:
    """Audio chunks → (embedding, window end sample) every HOP, skipping gated windows."""

    def __init__(self, embedder: PhraseEmbedder) -> None:
        self._embedder = embedder
        self._buf = np.zeros(WINDOW, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._samples = 0

    def push(self, audio: bytes) -> Iterable[tuple[np.ndarray, int]]:
        samples = np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        out: list[tuple[np.ndarray, int]] = []
        while len(self._pending) >= HOP:
            hop, self._pending = self._pending[:HOP], self._pending[HOP:]
            self._buf = np.concatenate([self._buf[HOP:], hop])
            self._samples += HOP
            if loud_enough(hop):
                out.append((self._embedder.embed(self._buf), self._samples))
        return out

    def reset(self) -> None:
        self._buf[:] = 0.0
        self._pending = np.zeros(0, dtype=np.float32)
        self._samples = 0


@dataclass(frozen=True)
class PhraseSpec:
    """One enrolled phrase: its name (what Detection.word says), references and threshold."""

    name: str
    references: np.ndarray
    """[n, 2048] unit embeddings"""
    threshold: float = DEFAULT_THRESHOLD
    refractory_ms: int = 2000
    near_misses: np.ndarray | None = None
    """[m, 2048] unit embeddings of its near misses; None or empty: the threshold alone decides"""
    margin: float = DEFAULT_MARGIN

    def score(self, embedding: np.ndarray) -> float:
        return float(np.max(self.references @ embedding))

    def accepts(self, embedding: np.ndarray) -> float | None:
        """The window's score if it wakes: over the threshold, and nearer the phrase than any of
        its near misses by the margin; else None."""
        score = self.score(embedding)
        if score < self.threshold:
            return None
        if self.near_misses is not None and len(self.near_misses):
            if score - float(np.max(self.near_misses @ embedding)) < self.margin:
                return None
        return score


class PhraseMatcher:
    """One phrase's decision on the embedding stream: threshold, then a refractory period."""

    def __init__(self, spec: PhraseSpec) -> None:
        self.spec = spec
        self._quiet_until_ms = -1

    def push(self, embedding: np.ndarray, end_ms: int) -> Detection | None:
        if end_ms < self._quiet_until_ms:
            return None
        score = self.spec.accepts(embedding)
        if score is None:
            return None
        self._quiet_until_ms = end_ms + self.spec.refractory_ms
        return Detection(word=self.spec.name, score=round(score, 4), timestamp_ms=end_ms)

    def reset(self) -> None:
        self._quiet_until_ms = -1


class WakePhraseDetector:
    """Wake phrases written as text; implements models.base.WakeModel."""

    def __init__(self, specs: Iterable[PhraseSpec], embedder: PhraseEmbedder | None = None) -> None:
        specs = tuple(specs)
        if not specs:
            raise ModelError("model-config", "no wake phrases to listen for")
        self.embedder = embedder or PhraseEmbedder()
        self._stream = WindowStream(self.embedder)
        self._matchers = [PhraseMatcher(s) for s in specs]
        self._origin_ms: int | None = None
        _LOGGER.info("listening for phrases %s", ", ".join(repr(s.name) for s in specs))

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(m.spec.name for m in self._matchers)

    def process_streaming(self, audio: bytes, timestamp_ms: int) -> list[Detection]:
        if self._origin_ms is None:
            self._origin_ms = timestamp_ms
        found: list[Detection] = []
        for embedding, end_sample in self._stream.push(audio):
            end_ms = self._origin_ms + end_sample * 1000 // SAMPLE_RATE
            for matcher in self._matchers:
                detection = matcher.push(embedding, end_ms)
                if detection is not None:
                    found.append(detection)
        return found

    def reset(self) -> None:
        self._origin_ms = None
        self._stream.reset()
        for matcher in self._matchers:
            matcher.reset()

    def close(self) -> None:
        self.embedder.close()
