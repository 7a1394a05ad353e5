"""Wake words: microWakeWord and openWakeWord models behind one runner.

A model is a `Scorer` (TFLite or ONNX, see models/base.py) plus the feature front end its input
needs, chosen by the input's feature size: 40 → the TFLite Micro audio front end (10 ms steps,
pymicro-features), 96 → openWakeWord's melspectrogram + embedding models (80 ms steps). Words
that need the same front end share one instance of it, so a second word costs only its scorer.
Each word has its own threshold, sliding window and refractory period, all in audio time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pymicro_features import MicroFrontend

from device.errors import ModelError
from device.events import SAMPLE_RATE, Detection
from device.settings import WakeSettings, WakeWordSettings
from models.base import Scorer
from models.onnx import OnnxScorer
from models.tflite import TfliteModel, TfliteScorer
from models.wake_confirm import CALIBRATED, Confirm, Confirmers

_LOGGER = logging.getLogger(__name__)

Family = Literal["micro", "oww"]
FEATURE_SIZES: dict[int, Family] = {40: "micro", 96: "oww"}

MICRO_BUILTINS = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
OWW_THRESHOLD = 0.5
"""openWakeWord's recommended cut-off; its models ship no manifest."""
RISE_LEVEL = 0.5
"""Where a word's probability first crosses this, in the run that ends in a detection, is the
estimate of where the word's audio ended (`Detection.end_ms`). Measured on the tuning voices
(clean and pink 10 dB): the crossing lies a median +50 ms (okay_nabu), -40 ms (hey_jarvis),
+100 ms (alexa) from the true end, while the detection itself lags it by +140..+220 ms and the
probability's peak by +330 ms (it stays high well into the command). ±~100 ms, so the
listening pipeline refines it with the VAD (device/listening/wakecut.py)."""


def _package_dir(name: str) -> Path:
    # Found without importing the package: we only want its data files.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model-missing", f"the {name} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def micro_models_dir() -> Path:
    return _package_dir("pymicro_wakeword") / "models"


def oww_models_dir() -> Path:
    return _package_dir("pyopen_wakeword") / "models"


@dataclass(frozen=True, slots=True)
class WakeWordSpec:
    """Everything needed to run one word, resolved from settings and the model's manifest."""

    name: str
    model: Path
    threshold: float
    window: int
    refractory_ms: int = 2000
    confirm: Confirm | None = None
    """Two stages (models/wake_confirm.py): candidates over `confirm.first_cutoff`, and under
    `threshold` they need the confirming model's yes."""


def resolve_word(word: WakeWordSettings, refractory_s: float = 2.0, two_stage: bool = True) -> WakeWordSpec:
    """Settings → spec: a built-in name, 'oww:<name>', or a .json / .tflite / .onnx path."""
    ref = word.model
    threshold, window = OWW_THRESHOLD, 1
    if ref in MICRO_BUILTINS:
        path = micro_models_dir() / f"{ref}.json"
    elif ref.startswith("oww:"):
        path = oww_models_dir() / f"{ref[4:]}.tflite"
        if ref[4:] in ("melspectrogram", "embedding_model") or not path.is_file():
            known = sorted(p.stem for p in oww_models_dir().glob("*.tflite") if p.stem not in ("melspectrogram", "embedding_model"))
            raise ModelError("model-missing", f"no openWakeWord model {ref[4:]!r} (known: {', '.join(known)})")
    else:
        path = Path(ref)
        if not path.is_file():
            raise ModelError("model-missing", f"wake word model {ref!r} is neither a built-in ({', '.join(MICRO_BUILTINS)}), 'oww:<name>' nor an existing file")
    name = ref if ref.startswith("oww:") else path.stem
    confirm = None
    if path.suffix == ".json":
        confirm = _read_confirm(path) if two_stage else None
        path, name, threshold, window = _read_micro_manifest(path)
    elif path.suffix not in (".tflite", ".onnx"):
        raise ModelError("model-format", f"wake word model {path}: expected .json, .tflite or .onnx")
    return WakeWordSpec(
        name=name,
        model=path,
        threshold=word.threshold if word.threshold is not None else threshold,
        window=word.window if word.window is not None else window,
        refractory_ms=round(refractory_s * 1000),
        confirm=confirm,
    )


def _read_confirm(path: Path) -> Confirm | None:
    """A microWakeWord manifest's second stage: its own `voxhome_confirm` section (a calibrated
    wake bundle's), else the calibrated default for a packaged word (models/wake_confirm.py)."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        name = Path(config["model"]).stem
        rule = config.get("voxhome_confirm")
        if rule is None:
            default = CALIBRATED.get(name) if path.parent == micro_models_dir() else None
            if default is None:
                return None
            rule = {"first_cutoff": default[0], "cutoff": default[1], "model": default[2]}
        model = str(rule["model"])
        if model.startswith("ewn:"):
            # EfficientWord-Net matching the phrase, enrolled from text (models/wake_confirm.py).
            from models.wake_phrase_enrol import normalize

            refs = path.parent / str(rule["references"]) if "references" in rule else None
            if refs is not None and not refs.is_file():
                raise ModelError("model-missing", f"{path}: the phrase references {refs.name!r} are not in the bundle")
            return Confirm(float(rule["first_cutoff"]), float(rule["cutoff"]), None, normalize(model[4:]), refs,
                           verify_all=_flag(rule, path))
        oww = oww_models_dir() / f"{model[4:]}.tflite" if model.startswith("oww:") else path.parent / model
        if not oww.is_file():
            raise ModelError("model-missing", f"{path}: the confirming model {model!r} is not installed")
        return Confirm(float(rule["first_cutoff"]), float(rule["cutoff"]), oww, verify_all=_flag(rule, path))
    except (OSError, KeyError, TypeError, AttributeError) as err:
        raise ModelError("model-manifest", f"bad two-stage rule in {path}: {err!r}") from None
    except ValueError as err:
        raise ModelError("model-manifest", f"bad two-stage rule in {path}: {err}") from None


def _flag(rule: dict[str, object], path: Path) -> bool:
    value = rule.get("verify_all", False)
    if not isinstance(value, bool):
        raise ModelError("model-manifest", f"bad two-stage rule in {path}: verify_all must be true or false, not {value!r}")
    return value


def _read_micro_manifest(path: Path) -> tuple[Path, str, float, int]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        micro = config["micro"]
        return (
            path.parent / config["model"],
            Path(config["model"]).stem,
            float(micro["probability_cutoff"]),
            int(micro["sliding_window_size"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError("model-manifest", f"bad microWakeWord manifest {path}: {err!r}") from None


def open_scorer(path: Path) -> Scorer:
    if path.suffix == ".onnx":
        return OnnxScorer(path, label=str(path))
    return TfliteScorer(path)


class Features(Protocol):
    """A shared feature front end: audio in, (feature vector, audio end sample) out."""

    def push(self, audio: bytes) -> Iterable[tuple[np.ndarray, int]]: ...

    def reset(self) -> None: ...


class MicroFeatures:
    """TFLite Micro audio front end: 40 features per 10 ms step (30 ms windows)."""

    STEP_BYTES = 320

    def __init__(self) -> None:
        self._frontend = MicroFrontend()
        self._pending = b""
        self._samples = 0

    def push(self, audio: bytes) -> Iterable[tuple[np.ndarray, int]]:
        data = self._pending + audio if self._pending else audio
        pos = 0
        out: list[tuple[np.ndarray, int]] = []
        while pos + self.STEP_BYTES <= len(data):
            result = self._frontend.process_samples(data[pos : pos + self.STEP_BYTES])
            pos += result.samples_read * 2
            self._samples += result.samples_read
            if result.features:
                out.append((np.asarray(result.features, dtype=np.float32), self._samples))
        self._pending = data[pos:]
        return out

    def reset(self) -> None:
        self._frontend.reset()
        self._pending = b""
        self._samples = 0


class OwwFeatures:
    """openWakeWord's front end: melspectrogram every 80 ms, one 96-d embedding per 80 ms.

    The buffers start filled with the features of silence, so words can be scored from the
    first step instead of after ~2 s of warm-up.
    """

    HOP = 1280
    MEL_INPUT = 1760
    MEL_FRAMES = 76
    MELS = 32

    def __init__(self, models_dir: Path | None = None) -> None:
        models_dir = models_dir or oww_models_dir()
        self._mel = TfliteModel(models_dir / "melspectrogram.tflite", resize=(1, self.MEL_INPUT))
        self._emb = TfliteModel(models_dir / "embedding_model.tflite", resize=(1, self.MEL_FRAMES, self.MELS, 1))
        self._silence_mels = self._mels(np.zeros(self.MEL_INPUT, dtype=np.float32))
        self._audio: np.ndarray = np.zeros(0, dtype=np.float32)
        self._samples = 0
        self._mel_buf: np.ndarray = self._silence_mels
        self.reset()

    def _mels(self, audio: np.ndarray) -> np.ndarray:
        # The embedding model was trained on mels rescaled this way (openWakeWord's convention).
        return self._mel.run(audio[np.newaxis, :]).reshape(-1, self.MELS) / 10.0 + 2.0

    def silence_embedding(self) -> np.ndarray:
        mels = np.tile(self._silence_mels, (self.MEL_FRAMES // len(self._silence_mels) + 1, 1))[: self.MEL_FRAMES]
        return self._emb.run(mels.reshape(1, self.MEL_FRAMES, self.MELS, 1)).reshape(-1)

    def push(self, audio: bytes) -> Iterable[tuple[np.ndarray, int]]:
        # openWakeWord's models take raw int16 sample values as float.
        samples = np.frombuffer(audio, dtype="<i2").astype(np.float32)
        self._audio = np.concatenate([self._audio, samples])
        out: list[tuple[np.ndarray, int]] = []
        while len(self._audio) >= self.MEL_INPUT:
            mels = self._mels(self._audio[: self.MEL_INPUT])
            self._audio = self._audio[self.HOP :]
            self._samples += self.HOP
            self._mel_buf = np.concatenate([self._mel_buf[len(mels) :], mels])
            emb = self._emb.run(self._mel_buf.reshape(1, self.MEL_FRAMES, self.MELS, 1)).reshape(-1)
            out.append((emb, self._samples))
        return out

    def reset(self) -> None:
        # 480 samples of look-back (MEL_INPUT - HOP) start as silence.
        self._audio = np.zeros(self.MEL_INPUT - self.HOP, dtype=np.float32)
        self._samples = 0
        reps = self.MEL_FRAMES // len(self._silence_mels) + 1
        self._mel_buf = np.tile(self._silence_mels, (reps, 1))[-self.MEL_FRAMES :]


class _Word:
    """One word's state: its scorer's input window, the probability window, the refractory."""

    def __init__(self, spec: WakeWordSpec, scorer: Scorer, fill: np.ndarray | None,
                 confirmer: Confirmers | None = None) -> None:
        self.spec = spec
        self.scorer = scorer
        self._confirmer = confirmer if spec.confirm is not None else None
        self._floor = (min(spec.confirm.first_cutoff, spec.threshold) if spec.confirm is not None and confirmer is not None
                       else spec.threshold)
        self.unconfirmed = 0
        """Candidates in the unsure band the confirming model turned down."""
        self._steps = scorer.input_shape[1]
        self._fill = fill
        self._features: deque[np.ndarray] = deque(maxlen=self._steps)
        self._probs: deque[float] = deque(maxlen=spec.window)
        self._quiet_until_ms = -1
        self._rise_ms: int | None = None
        self.reset()

    def push(self, feature: np.ndarray, end_ms: int) -> Detection | None:
        self._features.append(feature)
        if len(self._features) < self._steps:
            return None
        prob = self.scorer.score(np.stack(self._features)[np.newaxis, :, :])
        if self.scorer.streaming:
            # Streaming models keep their own history: give them each step exactly once.
            self._features.clear()
        self._probs.append(prob)
        if prob < RISE_LEVEL:
            self._rise_ms = None
        elif self._rise_ms is None:
            self._rise_ms = end_ms
        if len(self._probs) < self.spec.window or end_ms < self._quiet_until_ms:
            return None
        score = sum(self._probs) / len(self._probs)
        if score <= self._floor:
            return None
        verify = score <= self.spec.threshold or (self.spec.confirm is not None and self.spec.confirm.verify_all)
        if verify and self._confirmer is not None and not self._confirmed(end_ms):
            return None
        self._quiet_until_ms = end_ms + self.spec.refractory_ms
        self._probs.clear()
        rise = end_ms if self._rise_ms is None else self._rise_ms
        return Detection(word=self.spec.name, score=round(score, 4), timestamp_ms=end_ms, end_ms=rise)

    def _confirmed(self, end_ms: int) -> bool:
        # Unsure: the first stage alone would not wake. A rejection sets no refractory, so the
        # next step of the same phrase is checked again (the confirmer follows the stream).
        assert self._confirmer is not None and self.spec.confirm is not None
        if self._confirmer.best(self.spec.name, end_ms) > self.spec.confirm.cutoff:
            return True
        self.unconfirmed += 1
        return False

    def reset(self) -> None:
        self._features.clear()
        self._probs.clear()
        self._quiet_until_ms = -1
        self._rise_ms = None
        self.scorer.reset()
        if self._fill is not None and not self.scorer.streaming:
            self._features.extend([self._fill] * (self._steps - 1))


class WakeWordDetector:
    """Several wake words over shared feature front ends; implements models.base.WakeModel."""

    def __init__(self, specs: Iterable[WakeWordSpec]) -> None:
        specs = tuple(specs)
        if not specs:
            raise ModelError("model-config", "no wake words to listen for")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ModelError("model-config", f"wake word listed twice: {names}")
        self._features: dict[Family, Features] = {}
        self._words: dict[Family, list[_Word]] = {}
        confirms = {s.name: s.confirm for s in specs if s.confirm is not None}
        self.confirmer: Confirmers | None = Confirmers(confirms) if confirms else None
        """The second stage of the words that have one (off until a score is unsure)."""
        for spec in specs:
            scorer = open_scorer(spec.model)
            family = FEATURE_SIZES.get(scorer.input_shape[2])
            if family is None:
                raise ModelError(
                    "model-shape",
                    f"{spec.model}: input {scorer.input_shape} takes neither microWakeWord (40) nor openWakeWord (96) features",
                )
            if family not in self._features:
                self._features[family] = MicroFeatures() if family == "micro" else OwwFeatures()
            front = self._features[family]
            fill = front.silence_embedding() if isinstance(front, OwwFeatures) else None
            self._words.setdefault(family, []).append(_Word(spec, scorer, fill, self.confirmer))
        self._origin_ms: int | None = None
        _LOGGER.info("listening for %s%s", ", ".join(names),
                     f" (two stages for {', '.join(confirms)})" if confirms else "")

    @classmethod
    def from_settings(cls, settings: WakeSettings) -> WakeWordDetector:
        return cls(resolve_word(w, settings.refractory_s, settings.two_stage) for w in settings.words)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(w.spec.name for ws in self._words.values() for w in ws)

    def process_streaming(self, audio: bytes, timestamp_ms: int) -> list[Detection]:
        if self._origin_ms is None:
            self._origin_ms = timestamp_ms
        if self.confirmer is not None:
            self.confirmer.push(audio, timestamp_ms)
        detections: list[Detection] = []
        for family, front in self._features.items():
            words = self._words[family]
            for feature, end_sample in front.push(audio):
                end_ms = self._origin_ms + end_sample * 1000 // SAMPLE_RATE
                for word in words:
                    found = word.push(feature, end_ms)
                    if found is not None:
                        detections.append(found)
        return detections

    def reset(self) -> None:
        self._origin_ms = None
        if self.confirmer is not None:
            self.confirmer.reset()
        for front in self._features.values():
            front.reset()
        for words in self._words.values():
            for word in words:
                word.reset()

    def close(self) -> None:
        for words in self._words.values():
            for word in words:
                word.scorer.close()
        if self.confirmer is not None:
            self.confirmer.close()
