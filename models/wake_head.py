"""A wake word's verifier head: a small network trained on openWakeWord's speech embeddings.

openWakeWord's models are a small classifier over a frozen speech-embedding model (96 values
every 80 ms, models/wake.py `OwwFeatures`); its packaged classifiers were trained on other
people's synthetic data and never saw the one-sound near misses that wake our first stage
("okay nahpoo"). A head is the same kind of classifier trained on the project's own evaluation
audio (device/bench/wake/heads.py: the TUNING voices' phrases as positives, their near misses,
speech, noise, music and the other words as negatives). It takes the same input as an
openWakeWord model ([batch, 16, 96]) and is exported to ONNX, so the second stage runs it with the
openWakeWord confirmer's code (models/wake_confirm.py `OwwConfirmer`) and the wake bundle ships
it beside the word's manifest, where an OTA update can replace it.

Training is scikit-learn's MLPClassifier (build/bench machines only; the device runs the ONNX).
The input standardisation is folded into the first layer, so the graph is MatMul-Relu-MatMul-
Sigmoid on the flattened window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import ModelError

STEPS = 16
"""Embeddings per window, as openWakeWord's models (1.28 s of steps, 2.0 s of audio with the
embedding's own context)."""
DIM = 96
HIDDEN = 32
"""One hidden layer of 32: ~49k weights, 200 KB of ONNX, ~10 µs per window on this x86 box. Other sizes were
not tried."""


@dataclass(frozen=True, slots=True)
class Head:
    """Weights of a trained head, standardisation folded in: p = σ(relu(x·w1 + b1)·w2 + b2)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities for windows [n, STEPS, DIM] (numpy; the ONNX graph computes the same)."""
        x = np.asarray(windows, np.float32).reshape(len(windows), -1)
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        z = (h @ self.w2 + self.b2).reshape(-1)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), np.float64)


def train(positives: np.ndarray, negatives: np.ndarray, *, seed: int = 0, hidden: int = HIDDEN,
          positive_weight: float = 4.0) -> Head:
    """Fit a head on windows [n, STEPS, DIM]. There are ~100x fewer positives than negatives, so
    they are repeated until they weigh about `positive_weight`/10 of the negatives: otherwise the
    network learns to say no to everything."""
    from sklearn.neural_network import MLPClassifier

    if len(positives) == 0 or len(negatives) == 0:
        raise ModelError("model-train", "a wake head needs both positive and negative windows")
    reps = max(1, round(positive_weight * len(negatives) / len(positives) / 10))
    x = np.concatenate([np.repeat(positives, reps, axis=0), negatives]).reshape(-1, STEPS * DIM).astype(np.float32)
    y = np.concatenate([np.ones(len(positives) * reps), np.zeros(len(negatives))])
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-3
    net = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, batch_size=256, learning_rate_init=1e-3,
                        max_iter=30, early_stopping=True, validation_fraction=0.1, n_iter_no_change=4,
                        random_state=seed)
    net.fit((x - mean) / std, y)
    w1, w2 = (np.asarray(c, np.float32) for c in net.coefs_)
    b1, b2 = (np.asarray(b, np.float32) for b in net.intercepts_)
    # (x - mean)/std · w1 + b1 = x · (w1/std) + (b1 - (mean/std) · w1)
    folded = w1 / std[:, None].astype(np.float32)
    return Head(folded, (b1 - (mean / std).astype(np.float32) @ w1).astype(np.float32), w2, b2)


def export(head: Head, path: Path) -> Path:
    """The head as ONNX: input 'embeddings' [batch, 16, 96] float, output 'probability' [batch, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Reshape", ["embeddings", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray([-1, STEPS * DIM], np.int64), "flat_shape"),
        numpy_helper.from_array(head.w1.astype(np.float32), "w1"),
        numpy_helper.from_array(head.b1.astype(np.float32), "b1"),
        numpy_helper.from_array(head.w2.astype(np.float32), "w2"),
        numpy_helper.from_array(head.b2.astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes, "voxhome_wake_head",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", STEPS, DIM])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="voxhome")
    model.ir_version = 8  # what every onnxruntime >= 1.17 reads
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)
    return path


def score_windows(path: Path, windows: np.ndarray, batch: int = 4096) -> np.ndarray:
    """The exported head's probabilities for many windows at once (evaluation; the device scores
    one window per step through `OnnxScorer`)."""
    from models.onnx import open_session

    session = open_session(path)
    name = session.get_inputs()[0].name
    out = [np.asarray(session.run(None, {name: np.asarray(windows[i:i + batch], np.float32)})[0]).reshape(-1)
           for i in range(0, len(windows), batch)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
