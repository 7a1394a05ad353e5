"""Silero VAD (v5/v6 ONNX from the `silero-vad` wheel), run directly with onnxruntime.

Streaming: audio arrives in any chunk size, probabilities come out per 512-sample window
(32 ms). The recurrent state and the 64-sample context the model expects in front of each
window are carried between calls, so a stream fed in pieces scores exactly like one fed whole.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from device.errors import ModelError
from device.events import SAMPLE_RATE
from models.onnx import check_inputs, open_session

_LOGGER = logging.getLogger(__name__)

WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
STATE_SHAPE = (2, 1, 128)


def builtin_model_path(name: str = "silero_vad.onnx") -> Path:
    """The ONNX file inside the installed silero_vad package (found without importing it:
    its __init__ pulls in torch, which the device never needs)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model-missing", "the silero-vad package is not installed (scripts/setup.sh installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise ModelError("model-missing", f"silero-vad has no {name} in {path.parent}")
    return path


class SileroVad:
    """Speech probability per 32 ms window, state carried across calls."""

    window_samples = WINDOW_SAMPLES

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else builtin_model_path()
        self._session = open_session(self.path)
        check_inputs(
            self._session,
            {"input": (None, None), "state": (2, None, 128), "sr": ()},
            f"Silero VAD {self.path.name}",
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._pending = np.zeros(0, dtype=np.float32)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    @classmethod
    def from_builtin(cls) -> SileroVad:
        return cls(builtin_model_path())

    def process_streaming(self, audio: bytes) -> list[float]:
        samples = np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0
        return self.process_float(samples)

    def process_float(self, samples: np.ndarray) -> list[float]:
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        probs: list[float] = []
        n = len(buf) // WINDOW_SAMPLES
        for i in range(n):
            window = buf[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            x = np.concatenate([self._context, window])[np.newaxis, :]
            out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
            self._context = window[-CONTEXT_SAMPLES:]
            probs.append(float(out[0, 0]))
        self._pending = buf[n * WINDOW_SAMPLES :].copy()
        return probs

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def close(self) -> None:
        pass
