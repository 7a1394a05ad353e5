"""`--audio FILE` streams: the file is decoded, mixed down and resampled block by block, so an hour
costs the memory of a block; the frames are the ones a whole-file decode gives, and wrong files
still fail when the source is opened, with the same codes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from device.errors import AudioError
from device.settings import MicSettings
from hal.audio import float_to_pcm16
from hal.source import FileSource, read_audio_file


def tone(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    cols = [left, 0.3 * np.sin(2 * np.pi * 660 * t)][:channels]
    return np.stack(cols, axis=1).astype(np.float32)


def write_long_wav(path: Path, minutes: int, rate: int = 44100) -> int:
    """A long stereo 16-bit WAV written a second at a time (the test itself stays small too)."""
    with soundfile.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        second = tone(1.0, rate, 2)
        for _ in range(minutes * 60):
            out.write(second)
    return minutes * 60 * rate


def test_a_long_file_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    frames_in = write_long_wav(path, minutes=6)
    # What the old whole-file decode held at once: float32 stereo at 44.1 kHz, before resampling.
    decoded_bytes = frames_in * 2 * 4
    tracemalloc.start()
    try:
        source = FileSource(path)
        count = 0
        last_ms = -10
        for chunk in source.frames():
            assert chunk.timestamp_ms == last_ms + 10 and len(chunk.audio) == 320
            last_ms = chunk.timestamp_ms
            count += 1
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 6 * 60 * 100 == source.duration_ms // 10
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"
    assert peak * 20 < decoded_bytes  # 127 MiB decoded whole; a block is a fraction of 1 MiB


def test_streamed_frames_equal_a_whole_file_decode(tmp_path: Path) -> None:
    path = tmp_path / "short.flac"
    audio = tone(3.3, 48000, 2, seed=5)
    soundfile.write(str(path), audio, 48000, subtype="PCM_24")
    decoded, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    whole = soxr.resample(decoded.mean(axis=1, dtype=np.float32), rate, 16000, quality="HQ").astype(np.float32)
    expected = float_to_pcm16(whole)
    streamed = b"".join(c.audio for c in FileSource(path).frames())
    pad = -len(expected) % 320
    assert streamed == expected + bytes(pad)
    assert np.array_equal(read_audio_file(path), whole)


def test_16k_mono_passes_through_untouched(tmp_path: Path) -> None:
    path = tmp_path / "plain.wav"
    pcm = (tone(1.234, 16000, 1)[:, 0] * 32767).astype("<i2")
    soundfile.write(str(path), pcm, 16000, subtype="PCM_16")
    streamed = b"".join(c.audio for c in FileSource(path).frames())
    assert streamed[: len(pcm) * 2] == pcm.tobytes() and not any(streamed[len(pcm) * 2:])


@pytest.mark.parametrize(("make", "code"), [
    (lambda p: p.write_text("this is not audio"), "audio-unsupported"),
    (lambda p: soundfile.write(str(p), np.zeros(0, dtype=np.float32), 16000), "audio-empty"),
    (lambda p: None, "audio-missing"),
])
def test_wrong_files_fail_when_opened(tmp_path: Path, make: object, code: str) -> None:
    from device.service import open_source

    path = tmp_path / "input.wav"
    make(path)  # type: ignore[operator]
    with pytest.raises(AudioError) as err:
        open_source(MicSettings(), str(path))
    assert err.value.code == code and str(path) in err.value.message
