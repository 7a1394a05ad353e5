"""Silero VAD run directly with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.errors import ModelError
from models.tflite_to_onnx import convert
from models.vad import SileroVad
from models.wake import oww_models_dir
from tests.frontend.conftest import pcm, silence, speech


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad.from_builtin()


def test_speech_and_silence(vad: SileroVad) -> None:
    vad.reset()
    probs = vad.process_streaming(pcm(silence(1.0), speech("turn on the kitchen light"), silence(1.0)))
    assert len(probs) == (32000 + len(speech("turn on the kitchen light"))) // 512
    assert max(probs[:25]) < 0.2  # the first second is silence
    assert max(probs) > 0.9


def test_state_is_carried_across_any_chunking(vad: SileroVad) -> None:
    audio = pcm(silence(0.3), speech("close the blinds"), silence(0.3))
    vad.reset()
    whole = vad.process_streaming(audio)
    vad.reset()
    pieces: list[float] = []
    for i in range(0, len(audio), 2 * 333):
        pieces += vad.process_streaming(audio[i : i + 2 * 333])
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    # Without a reset the carried state changes the scores, so reset() really clears it.
    assert not np.allclose(vad.process_streaming(audio)[:8], whole[:8], atol=1e-5)


def test_a_model_with_other_inputs_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "not_vad.onnx"
    wrong.write_bytes(convert(oww_models_dir() / "alexa.tflite"))
    with pytest.raises(ModelError) as err:
        SileroVad(wrong)
    assert err.value.code == "model-shape"
    with pytest.raises(ModelError) as err:
        SileroVad(tmp_path / "missing.onnx")
    assert err.value.code == "model-missing"
