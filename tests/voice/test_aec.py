from __future__ import annotations

import numpy as np
import pytest

from device.__main__ import main as voxhome_main
from device.bench import aec as bench
from device.bench.speech import synthesize
from device.errors import AudioError
from device.events import AudioChunk
from device.settings import SpeakerSettings
from device.voice.aec import EchoCancelledSource, EchoCanceller, ReferenceBuffer, cancel_echo
from hal.audio import float_to_pcm16, frames_from_pcm
from hal.player import Player
from hal.source import PcmSource
from tests.voice.conftest import RecordingOutput


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    text = "The bedroom temperature is twenty one degrees. The front door is locked. Turning on three lights."
    speech = np.concatenate([synthesize(text)] * 3)
    return (speech / np.abs(speech).max() * 0.5).astype(np.float32)


def test_aec_removes_at_least_20_db_of_synthetic_echo(far: np.ndarray) -> None:
    echo = np.convolve(far, bench.room_impulse_response(0.3, 20.0, seed=3))[: len(far)].astype(np.float32)
    for suppress in (False, True):
        canceller = EchoCanceller(filter_ms=200, suppress=suppress)
        residual = canceller.process_array(echo, far)
        canceller.close()
        assert bench.erle_db(echo, residual, skip_s=8.0) >= 20.0
    # Without the reference nothing is cancelled: the canceller works from the far end, not by muting.
    blind = EchoCanceller(filter_ms=200, suppress=False)
    passed = blind.process_array(echo, np.zeros_like(far))
    assert abs(bench.erle_db(echo, passed, skip_s=8.0)) < 1.0


def test_near_end_speech_survives(far: np.ndarray) -> None:
    near = synthesize("okay nabu, turn off the kitchen light")
    for suppress, expected_lag in ((False, 0), (True, 160)):
        canceller = EchoCanceller(suppress=suppress)
        out = canceller.process_array(near, np.zeros_like(near))
        lag = canceller.delay_samples  # the residual-echo suppressor's overlap-add delays one frame
        n = len(out)
        assert lag == expected_lag
        assert np.corrcoef(out[lag:], near[: n - lag])[0, 1] > 0.95


def test_player_tap_feeds_the_mic_path(far: np.ndarray) -> None:
    """End to end: the player's reference tap → ReferenceBuffer → cancel_echo on mic frames."""
    # The player here runs faster than real time, so the buffer must hold the whole 12 s.
    reference = ReferenceBuffer(max_ms=15000)
    player = Player(RecordingOutput(realtime=False), SpeakerSettings(volume=1.0, fade_ms=0), reference=reference.push)
    played = far[: 16000 * 12]
    player.play_audio(played)
    player.drain()
    player.close()
    echo = np.convolve(played, bench.room_impulse_response(0.2, 10.0, seed=1))[: len(played)] * 0.5
    canceller = EchoCanceller()
    clean = list(cancel_echo(iter(frames_from_pcm(float_to_pcm16(echo))), canceller, reference))
    assert [c.timestamp_ms for c in clean[:3]] == [0, 10, 20]
    residual = np.frombuffer(b"".join(c.audio for c in clean), np.int16).astype(np.float32) / 32768
    assert bench.erle_db(echo.astype(np.float32), residual, skip_s=6.0) >= 15.0
    # With the reference used up, the buffer yields silence rather than blocking.
    assert reference.take(160) == bytes(320)


def test_wrong_frame_size_is_an_audio_error() -> None:
    canceller = EchoCanceller()
    with pytest.raises(AudioError):
        canceller.process(bytes(100), bytes(100))
    with pytest.raises(AudioError):
        list(cancel_echo(iter([AudioChunk(bytes(64))]), canceller, ReferenceBuffer()))


def test_reference_buffer_keeps_only_recent_audio() -> None:
    buf = ReferenceBuffer(max_ms=100)
    for i in range(30):
        buf.push(AudioChunk(np.full(160, i, np.int16).tobytes()))
    first = np.frombuffer(buf.take(160), np.int16)
    assert first[0] >= 20


def test_echo_cancelled_source_wraps_a_mic(far: np.ndarray) -> None:
    played = far[: 16000 * 10]
    echo = (np.convolve(played, bench.room_impulse_response(0.2, 10.0, seed=2))[: len(played)] * 0.5).astype(np.float32)
    reference = ReferenceBuffer(max_ms=12000)
    reference.push(AudioChunk(float_to_pcm16(played)))
    source = EchoCancelledSource(PcmSource(float_to_pcm16(echo)), EchoCanceller(), reference)
    frames = list(source.frames())
    source.close()
    residual = np.frombuffer(b"".join(f.audio for f in frames), np.int16).astype(np.float32) / 32768
    assert len(residual) == len(echo) // 160 * 160
    assert bench.erle_db(echo, residual, skip_s=6.0) >= 15.0


def test_bench_prints_erle_and_recall_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert voxhome_main(["bench", "aec", "--words", "3", "--ser-db", "6"]) == 0
    out = capsys.readouterr().out
    erle = float(out.split("after 8 s: ")[1].split(" dB")[0])
    assert erle >= 20.0
    row = next(line for line in out.splitlines() if "dB to echo" in line)
    counts = [int(part.split("/")[0]) for part in row.split("echo")[1].split()[:3]]
    assert counts[0] >= 2 and counts[2] >= counts[1]  # AEC never does worse than no AEC
    assert voxhome_main(["bench", "aec", "--words", "0"]) == 2
