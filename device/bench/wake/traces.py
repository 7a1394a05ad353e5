"""Score traces: every first-stage model over every clip once, per-step probabilities cached.

A trace is what the runner sees before it decides: for each word, the end (ms) of each scorer
step and the model's probability there, computed with the runner's own pieces (models/wake.py
`MicroFeatures`, `open_scorer`, the manifest's spec), so detections replayed from it
(metrics.fires) are the runner's detections. Beside them, the fire times of pymicro-wakeword's
own detector at its defaults, the peer. Cached as one npz per clip under
~/.cache/voxhome/eval/wake/traces/<models key>/, keyed by the model files and the peer's version,
so changing a cutoff, a window or adding a verifier never reruns a model.

A second-stage verifier starts from here: index.json beside the traces lists every clip (kind,
part, word, voice, condition, its WAV, where the wake phrase ends); `metrics.hit_times` on a trace
gives the first stage's detections at any cutoff, to cut the audio around and re-score.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.bench.wake.dataset import Audio, Clip, wake_dir
from device.errors import ModelError
from device.events import SAMPLE_RATE
from device.settings import WakeWordSettings
from models.base import Scorer
from models.manifest import sha256_file
from models.wake import (
    MICRO_BUILTINS,
    MicroFeatures,
    OwwFeatures,
    WakeWordSpec,
    open_scorer,
    resolve_word,
)

TRACE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Trace:
    clip_id: str
    seconds: float
    wake_end_s: float
    """positives: where the wake phrase ends in the audio; -1 for negatives"""
    end_ms: dict[str, np.ndarray]
    """word → end of each scorer step (ms from the clip's start)"""
    probs: dict[str, np.ndarray]
    """word → the model's probability at each step"""
    peer_ms: dict[str, np.ndarray]
    """word → where pymicro-wakeword's own detector (its defaults) started firing"""


class Scorers:
    """The runner's feature front end and one scorer per word, stepped the way `_Word` steps them."""

    def __init__(self, specs: Sequence[WakeWordSpec]) -> None:
        self.specs = tuple(specs)
        self._scorers: list[Scorer] = []
        self._fronts: dict[int, MicroFeatures | OwwFeatures] = {}
        self._silence: np.ndarray = np.zeros(0, np.float32)
        for spec in self.specs:
            scorer = open_scorer(spec.model)
            size = scorer.input_shape[2]
            if size not in (40, 96):
                raise ModelError("model-shape", f"{spec.model}: neither a microWakeWord nor an openWakeWord model")
            if size not in self._fronts:
                self._fronts[size] = MicroFeatures() if size == 40 else OwwFeatures()
                if size == 96:
                    # Computed once, not per clip: every openWakeWord window starts full of it.
                    self._silence = self._fronts[size].silence_embedding()  # type: ignore[union-attr]
            self._scorers.append(scorer)

    def trace(self, pcm: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        steps: dict[int, list[tuple[np.ndarray, int]]] = {}
        for size, front in self._fronts.items():
            front.reset()
            steps[size] = list(front.push(np.asarray(pcm, "<i2").tobytes()))
        for scorer in self._scorers:
            scorer.reset()
        ends: dict[str, np.ndarray] = {}
        probs: dict[str, np.ndarray] = {}
        for spec, scorer in zip(self.specs, self._scorers, strict=True):
            size = scorer.input_shape[1]
            front = self._fronts[scorer.input_shape[2]]
            # openWakeWord windows start full of silence's embedding, as the runner's do.
            fill = [self._silence] * (size - 1) if isinstance(front, OwwFeatures) else []
            window: deque[np.ndarray] = deque(fill, maxlen=size)
            t: list[int] = []
            p: list[float] = []
            for feature, end_sample in steps[scorer.input_shape[2]]:
                window.append(feature)
                if len(window) < size:
                    continue
                p.append(float(scorer.score(np.stack(window)[np.newaxis, :, :])))
                t.append(end_sample * 1000 // SAMPLE_RATE)
                if scorer.streaming:
                    window.clear()
            ends[spec.name] = np.asarray(t, np.int64)
            probs[spec.name] = np.asarray(p, np.float64)
        return ends, probs

    def close(self) -> None:
        for scorer in self._scorers:
            scorer.close()
        self._fronts.clear()


class PymicroPeer:
    """pymicro-wakeword's own API at its defaults: a fire is each inference where its detector
    turns True after being False (it has no refractory of its own; it infers every `stride`
    features and answers False in between, which is not a new decision)."""

    def __init__(self, words: Sequence[str]) -> None:
        from pymicro_wakeword import MicroWakeWord, Model

        self._words = tuple(words)
        self._models = [MicroWakeWord.from_builtin(Model(w)) for w in self._words]

    def fires(self, pcm: np.ndarray) -> dict[str, np.ndarray]:
        from pymicro_wakeword import MicroWakeWordFeatures

        features = MicroWakeWordFeatures()  # fresh state per clip, as the runner is reset per clip
        for model in self._models:
            model.reset()
        on = [False] * len(self._models)
        out: dict[str, list[int]] = {w: [] for w in self._words}
        for step, feature in enumerate(features.process_streaming(np.asarray(pcm, "<i2").tobytes())):
            for m, model in enumerate(self._models):
                now = bool(model.process_streaming(feature))
                if (step + 1) % model.stride:
                    continue
                if now and not on[m]:
                    out[self._words[m]].append(10 * (step + 1))
                on[m] = now
        return {w: np.asarray(v, np.int64) for w, v in out.items()}


def models_key(specs: Sequence[WakeWordSpec]) -> str:
    digest = hashlib.sha256(f"{TRACE_VERSION}|{importlib.metadata.version('pymicro-wakeword')}".encode())
    for spec in specs:
        digest.update(f"|{spec.name}:{sha256_file(spec.model)}".encode())
    return digest.hexdigest()[:16]


def builtin_specs(words: Sequence[str] = MICRO_BUILTINS) -> list[WakeWordSpec]:
    return [resolve_word(WakeWordSettings(w)) for w in words]


def confirming_specs(words: Sequence[str] = MICRO_BUILTINS) -> list[WakeWordSpec]:
    """The openWakeWord models of the same phrases: the second stage (models/wake_confirm.py)."""
    return [resolve_word(WakeWordSettings(f"oww:{w}")) for w in words]


class TraceStore:
    """Traces of one set of models, computed on first use and cached per clip."""

    def __init__(self, specs: Sequence[WakeWordSpec], root: Path | None = None) -> None:
        self.specs = tuple(specs)
        self.key = models_key(self.specs)
        self.root = (root or wake_dir() / "traces") / self.key
        self.root.mkdir(parents=True, exist_ok=True)
        self._scorers: Scorers | None = None
        self._peer: PymicroPeer | None = None
        self.computed = 0

    def get(self, clip: Clip, load: Callable[[], Audio]) -> Trace:
        """The clip's trace; `load()` gives its Audio, called only when the trace isn't cached."""
        path = self.root / f"{clip.id}.npz"
        if path.exists():
            try:
                return read_trace(clip.id, path)
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a torn write from a killed run: compute again
        audio = load()
        if self._scorers is None:
            self._scorers = Scorers(self.specs)
            self._peer = PymicroPeer([s.name for s in self.specs if s.name in MICRO_BUILTINS])
        assert self._peer is not None
        ends, probs = self._scorers.trace(audio.pcm)
        peer = self._peer.fires(audio.pcm)
        seconds = len(audio.pcm) / SAMPLE_RATE
        arrays: dict[str, np.ndarray] = {"seconds": np.asarray(seconds), "wake_end_s": np.asarray(audio.wake_end_s)}
        for name in ends:
            arrays[f"end_ms:{name}"] = ends[name]
            arrays[f"prob:{name}"] = probs[name]
            arrays[f"peer_ms:{name}"] = peer.get(name, np.zeros(0, np.int64))
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
        self.computed += 1
        return Trace(clip.id, seconds, audio.wake_end_s, ends, probs, peer)

    def write_index(self, rows: Sequence[dict[str, object]]) -> Path:
        """Which clip each trace is, with its audio file: what a second-stage verifier starts from."""
        path = self.root / "index.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"models": [s.name for s in self.specs], "clips": list(rows)}, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def close(self) -> None:
        if self._scorers is not None:
            self._scorers.close()


def read_trace(clip_id: str, path: Path) -> Trace:
    """One cached trace (`<root>/<clip id>.npz`; index.json says which clip and audio it is)."""
    with np.load(path) as data:
        names = [k.split(":", 1)[1] for k in data.files if k.startswith("prob:")]
        return Trace(
            clip_id,
            float(data["seconds"]),
            float(data["wake_end_s"]),
            {n: data[f"end_ms:{n}"] for n in names},
            {n: data[f"prob:{n}"] for n in names},
            {n: data[f"peer_ms:{n}"] for n in names},
        )
