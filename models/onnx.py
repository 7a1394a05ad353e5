"""ONNX Runtime sessions made one way: one thread, CPU provider, inputs checked before running.

A smart speaker runs several models side by side on a few small cores; letting each session
spawn a thread pool per core costs more in wake-ups than it gains on 10 ms windows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from device.errors import ModelError

_LOGGER = logging.getLogger(__name__)


def session_options(threads: int = 1) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def open_session(path: str | Path | bytes, *, threads: int = 1) -> ort.InferenceSession:
    """Load an ONNX model (a path or the serialized bytes); a bad file is a ModelError."""
    label = "<in-memory model>" if isinstance(path, bytes) else str(path)
    if not isinstance(path, bytes) and not Path(path).is_file():
        raise ModelError("model-missing", f"ONNX model {label} does not exist")
    source = path if isinstance(path, bytes) else str(path)
    try:
        session = ort.InferenceSession(
            source, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError("model-corrupt", f"can't load ONNX model {label}: {err}") from None
    _LOGGER.debug("loaded %s: inputs %s", label, [i.name for i in session.get_inputs()])
    return session


def check_inputs(session: ort.InferenceSession, expected: Mapping[str, Sequence[int | None]], label: str) -> None:
    """Fail at load time, not mid-stream, if the model's inputs aren't what the runner feeds.

    `None` in `expected` accepts any size for that axis (including a symbolic one).
    """
    actual = {i.name: i.shape for i in session.get_inputs()}
    for name, shape in expected.items():
        if name not in actual:
            raise ModelError("model-shape", f"{label}: no input named {name!r} (has {sorted(actual)})")
        got = actual[name]
        if len(got) != len(shape) or any(
            want is not None and isinstance(dim, int) and dim != want for want, dim in zip(shape, got, strict=False)
        ):
            raise ModelError("model-shape", f"{label}: input {name!r} has shape {got}, expected {list(shape)}")


class OnnxScorer:
    """A wake-word classifier in ONNX: float window [1, steps, dim] in, probability out."""

    streaming = False

    def __init__(self, path: str | Path | bytes, *, label: str = "onnx scorer") -> None:
        self._session = open_session(path)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 3:
            raise ModelError("model-shape", f"{label}: expected one [1, steps, features] input")
        shape = inputs[0].shape
        if not all(isinstance(d, int) for d in shape[1:]):
            raise ModelError("model-shape", f"{label}: input shape {shape} must have fixed steps and features")
        self._input = inputs[0].name
        self.input_shape: tuple[int, ...] = (1, int(shape[1]), int(shape[2]))
        self._label = label

    def score(self, window: np.ndarray) -> float:
        if window.shape != self.input_shape:
            raise ModelError("model-shape", f"{self._label}: got window {window.shape}, expected {self.input_shape}")
        (out,) = self._session.run(None, {self._input: window.astype(np.float32, copy=False)})
        return float(np.asarray(out).reshape(-1)[0])

    def reset(self) -> None:
        pass  # stateless

    def close(self) -> None:
        pass
