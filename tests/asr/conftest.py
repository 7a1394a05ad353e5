"""The real speech bundle, converted from the packaged weights once and cached on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.asr.factory import ensure_asr_bundle, packaged_model_dir
from models.asr.runner import WhisperOnnx


@pytest.fixture(scope="session")
def ct2_dir() -> Path:
    return packaged_model_dir()


@pytest.fixture(scope="session")
def asr_bundle() -> Path:
    """Built on first use (about 10 s), then reused from $XDG_CACHE_HOME/voxhome/bundles."""
    return ensure_asr_bundle()


@pytest.fixture(scope="session")
def runner(asr_bundle: Path) -> WhisperOnnx:
    return WhisperOnnx.load(asr_bundle)


@pytest.fixture(scope="session")
def float_runner(asr_bundle: Path, ct2_dir: Path) -> WhisperOnnx:
    """The runner with a float32 decoder built from the same weights: int8 activations are
    quantized per call (their scale depends on the whole batch), so exact-equality checks of the
    decoding logic need float."""
    import onnxruntime as ort

    from models.asr.ct2 import read_ct2
    from models.asr.graph import build_decoder

    runner = WhisperOnnx.load(asr_bundle)
    graph = build_decoder(read_ct2(ct2_dir / "model.bin")).SerializeToString()
    runner._decoder = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return runner
