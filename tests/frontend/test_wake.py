"""The wake-word runners on real models and synthesized speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.errors import ModelError
from device.events import Detection
from device.settings import WakeWordSettings
from hal.audio import frames_from_pcm
from models.base import WakeModel
from models.tflite_to_onnx import convert
from models.wake import WakeWordDetector, oww_models_dir, resolve_word
from tests.frontend.conftest import SLT, pcm, silence, speech


def detect(detector: WakeModel, audio: bytes, chunk_samples: int = 160) -> list[Detection]:
    detector.reset()
    found: list[Detection] = []
    for chunk in frames_from_pcm(audio, chunk_samples):
        found += detector.process_streaming(chunk.audio, chunk.timestamp_ms)
    return found


@pytest.mark.parametrize(
    ("text", "voice", "word"),
    [("okay nabu", None, "okay_nabu"), ("hey jarvis", SLT, "hey_jarvis"), ("alexa", None, "alexa"), ("hey mycroft", None, "hey_mycroft")],
)
def test_four_words_share_one_front_end_and_each_hears_only_its_own(
    four_words: WakeWordDetector, text: str, voice: object, word: str
) -> None:
    clip = speech(text) if voice is None else speech(text, SLT)
    audio = pcm(silence(0.5), clip, silence(1.0))
    found = detect(four_words, audio)
    assert [d.word for d in found] == [word]
    # Reported in audio time, after the phrase started and no later than ~0.6 s after it ended.
    assert 500 < found[0].timestamp_ms <= 500 + len(clip) * 1000 // 16000 + 600
    # Over the packaged cutoff, or over the low first-stage cutoff of a word with a second stage.
    spec = resolve_word(WakeWordSettings(word))
    assert found[0].score > (spec.confirm.first_cutoff if spec.confirm is not None else spec.threshold)
    if found[0].score <= spec.threshold:
        assert four_words.confirmer is not None and four_words.confirmer.activations > 0


def test_no_detection_on_other_speech(four_words: WakeWordDetector) -> None:
    audio = pcm(silence(0.3), speech("turn on the kitchen light and close the blinds in the bedroom"), silence(0.5))
    assert detect(four_words, audio) == []


def test_refractory_period_is_audio_time() -> None:
    twice = pcm(silence(0.3), speech("okay nabu"), silence(0.8), speech("okay nabu"), silence(0.8))
    strict = WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"), refractory_s=5.0)])
    loose = WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"), refractory_s=1.0)])
    assert len(detect(strict, twice)) == 1
    found = detect(loose, twice)
    assert len(found) == 2 and found[1].timestamp_ms - found[0].timestamp_ms > 1000


def test_threshold_and_window_come_from_manifest_or_settings() -> None:
    spec = resolve_word(WakeWordSettings("okay_nabu"))
    assert (spec.threshold, spec.window) == (0.85, 5)
    spec = resolve_word(WakeWordSettings("okay_nabu", threshold=0.995, window=3))
    assert (spec.threshold, spec.window) == (0.995, 3)
    # An impossible cut-off never fires on the same audio that fires at the default one.
    audio = pcm(silence(0.3), speech("okay nabu"), silence(0.8))
    assert detect(WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu", threshold=0.999))]), audio) == []


def test_chunk_size_and_reset_do_not_change_results(four_words: WakeWordDetector) -> None:
    audio = pcm(silence(0.4), speech("alexa"), silence(1.2), speech("okay nabu"), silence(0.8))
    first = detect(four_words, audio, 160)
    again = detect(four_words, audio, 160)  # reset() must clear the streaming models' state
    odd = detect(four_words, audio, 517)
    assert [d.word for d in first] == ["alexa", "okay_nabu"]
    assert again == first
    assert [d.word for d in odd] == [d.word for d in first]
    assert all(abs(a.timestamp_ms - b.timestamp_ms) <= 40 for a, b in zip(odd, first, strict=True))


def test_openwakeword_model_runs_beside_micro_models() -> None:
    detector = WakeWordDetector(
        [resolve_word(WakeWordSettings("oww:alexa")), resolve_word(WakeWordSettings("okay_nabu"))]
    )
    found = detect(detector, pcm(silence(0.5), speech("alexa"), silence(1.0)))
    assert [d.word for d in found] == ["oww:alexa"]


def test_onnx_wake_model_runs_through_the_same_runner(tmp_path: Path) -> None:
    onnx_path = tmp_path / "alexa.onnx"
    onnx_path.write_bytes(convert(oww_models_dir() / "alexa.tflite"))
    audio = pcm(silence(0.5), speech("alexa"), silence(1.0), speech("okay nabu"), silence(1.0))
    via_onnx = detect(WakeWordDetector([resolve_word(WakeWordSettings(str(onnx_path)))]), audio)
    via_tflite = detect(WakeWordDetector([resolve_word(WakeWordSettings("oww:alexa"))]), audio)
    assert [d.word for d in via_onnx] == ["alexa"]
    assert [d.timestamp_ms for d in via_onnx] == [d.timestamp_ms for d in via_tflite]
    assert via_onnx[0].score == pytest.approx(via_tflite[0].score, abs=1e-3)


def test_converter_refuses_what_it_cannot_convert() -> None:
    with pytest.raises(ModelError) as err:
        convert(oww_models_dir() / "hey_jarvis.tflite")
    assert err.value.code == "model-convert" and "IF" in err.value.message


@pytest.mark.parametrize(
    ("model", "code"),
    [("okay_nabo", "model-missing"), ("oww:nope", "model-missing"), ("/nonexistent/w.tflite", "model-missing")],
)
def test_unknown_models_are_clear_errors(model: str, code: str) -> None:
    with pytest.raises(ModelError) as err:
        resolve_word(WakeWordSettings(model))
    assert err.value.code == code


def test_corrupt_model_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError) as err:
        WakeWordDetector([resolve_word(WakeWordSettings(str(bad)))])
    assert err.value.code == "model-corrupt"
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"not a model")
    with pytest.raises(ModelError) as err:
        WakeWordDetector([resolve_word(WakeWordSettings(str(bad_onnx)))])
    assert err.value.code == "model-corrupt"


def test_micro_runner_matches_pymicro_wakeword_on_the_same_audio() -> None:
    """Our runner (ai-edge-litert, shared front end) fires where the reference library does."""
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

    audio = pcm(silence(0.4), speech("okay nabu"), silence(1.5), speech("okay nah boo", SLT), silence(1.0))
    reference = MicroWakeWord.from_builtin(Model.OKAY_NABU)
    features = MicroWakeWordFeatures()
    fired: list[int] = []
    step = 0
    for chunk in frames_from_pcm(audio):
        for feature in features.process_streaming(chunk.audio):
            step += 1
            if reference.process_streaming(feature) and (not fired or step * 10 - fired[-1] > 2000):
                fired.append(step * 10)
    ours = detect(WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"))]), audio)
    assert len(fired) == 2
    assert len(ours) == len(fired)
    # Our timestamps are audio time of the frame end; the reference's count feature steps
    # (which start after the front end's first 30 ms window): equal up to that offset.
    assert all(abs(o.timestamp_ms - f) <= 30 for o, f in zip(ours, fired, strict=True))
