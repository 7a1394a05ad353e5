"""TFLite interpreters from whichever runtime is installed, plus a wake-word scorer on top.

`ai_edge_litert` (the successor of `tflite-runtime`, numpy 2 ready) and `tflite_runtime` (2.14,
which needs numpy<2) expose the same `Interpreter` API; we take the first that imports.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import ModelError

_LOGGER = logging.getLogger(__name__)

RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def interpreter_module() -> Any:
    for name in RUNTIMES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ModelError(
        "model-runtime", "no TFLite runtime: install ai-edge-litert (or tflite-runtime with numpy<2)"
    )


def open_interpreter(
    path: str | Path, *, resize: Sequence[int] | None = None, threads: int = 1
) -> Any:
    """Load and allocate a .tflite model; `resize` fixes a dynamic first input's shape."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("model-missing", f"TFLite model {path} does not exist")
    module = interpreter_module()
    try:
        interpreter = module.Interpreter(model_path=str(path), num_threads=threads)
        if resize is not None:
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(resize))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError("model-corrupt", f"can't load TFLite model {path}: {err}") from None
    return interpreter


class TfliteModel:
    """One input, one output; quantized tensors are (de)quantized here so callers see floats."""

    def __init__(self, path: str | Path, *, resize: Sequence[int] | None = None) -> None:
        self.path = Path(path)
        self._interpreter = open_interpreter(path, resize=resize)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError("model-shape", f"{path}: expected one input and one output")
        self._in = inputs[0]
        self._out = outputs[0]
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in self._in["shape"])
        self.output_shape: tuple[int, ...] = tuple(int(d) for d in self._out["shape"])
        self._in_dtype = np.dtype(self._in["dtype"])
        self._in_scale, self._in_zero = self._in["quantization"]
        self._out_scale, self._out_zero = self._out["quantization"]

    @property
    def quantized(self) -> bool:
        return self._in_dtype in (np.int8, np.uint8)

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.input_shape:
            raise ModelError("model-shape", f"{self.path.name}: got input {x.shape}, expected {self.input_shape}")
        if self.quantized:
            info = np.iinfo(self._in_dtype)
            q = np.clip(np.round(x / self._in_scale + self._in_zero), info.min, info.max)
            x = q.astype(self._in_dtype)
        else:
            x = x.astype(self._in_dtype, copy=False)
        self._interpreter.set_tensor(self._in["index"], x)
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._out["index"])
        if out.dtype in (np.int8, np.uint8):
            return (out.astype(np.float32) - self._out_zero) * self._out_scale
        return out.astype(np.float32, copy=False)

    def reset(self) -> None:
        """Clear the model's variables (the state of a streaming model)."""
        self._interpreter.reset_all_variables()


class TfliteScorer:
    """A wake-word model in TFLite: [1, steps, features] in, probability out.

    Quantized (int8) models are microWakeWord's streaming models: they keep internal state and
    get consecutive windows; float models are openWakeWord classifiers over a sliding window.
    """

    def __init__(self, path: str | Path) -> None:
        self._model = TfliteModel(path)
        if len(self._model.input_shape) != 3 or self._model.input_shape[0] != 1:
            raise ModelError("model-shape", f"{path}: input {self._model.input_shape} is not [1, steps, features]")
        self.input_shape: tuple[int, ...] = self._model.input_shape
        self.streaming: bool = self._model.quantized

    def score(self, window: np.ndarray) -> float:
        return float(self._model.run(window).reshape(-1)[0])

    def reset(self) -> None:
        self._model.reset()

    def close(self) -> None:
        pass
