"""Audio sources: anything that yields 16 kHz mono s16le frames with audio timestamps.

A source is a plain blocking iterator (`frames()`); the service runs it in a reader thread and
hands frames to asyncio, so model code and tests never need an event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile

from device.errors import AudioError
from device.events import SAMPLE_RATE, AudioChunk
from hal.audio import FRAME_SAMPLES, Framer, float_to_pcm16, resample, to_mono_float

_LOGGER = logging.getLogger(__name__)

MAX_FILE_SECONDS = 4 * 3600


class AudioSource(Protocol):
    def frames(self) -> Iterator[AudioChunk]:
        """Yield frames until the source ends (files) or forever (microphones)."""
        ...

    def close(self) -> None: ...


def read_audio_file(path: str | Path) -> np.ndarray:
    """Read WAV/FLAC/Ogg of any rate and channel count → float32 mono at 16 kHz.

    Unreadable, empty or absurd files give an AudioError that names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("audio-missing", f"audio file {path} does not exist")
    try:
        info = soundfile.info(str(path))
        if info.frames == 0 or info.samplerate <= 0:
            raise AudioError("audio-empty", f"audio file {path} has no audio")
        if info.frames / info.samplerate > MAX_FILE_SECONDS:
            raise AudioError("audio-too-long", f"audio file {path} is longer than {MAX_FILE_SECONDS} s")
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as err:
        raise AudioError(
            "audio-unsupported",
            f"can't read {path}: {err.error_string} (supported: WAV, FLAC, Ogg Vorbis/Opus)",
        ) from None
    except (RuntimeError, TypeError) as err:
        raise AudioError("audio-unsupported", f"can't read {path}: {err}") from None
    return resample(to_mono_float(data), rate, SAMPLE_RATE)


class FileSource:
    """Frames from an audio file, as fast as they are consumed (or paced like a microphone)."""

    def __init__(self, path: str | Path, *, realtime: bool = False, frame_samples: int = FRAME_SAMPLES) -> None:
        self.path = Path(path)
        self._pcm = float_to_pcm16(read_audio_file(self.path))
        self._realtime = realtime
        self._frame_samples = frame_samples

    @property
    def duration_ms(self) -> int:
        return len(self._pcm) * 1000 // (2 * SAMPLE_RATE)

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer(self._frame_samples)
        start = time.monotonic()
        for chunk in framer.push(self._pcm):
            if self._realtime:
                delay = start + chunk.timestamp_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield chunk
        yield from framer.flush()

    def close(self) -> None:
        pass


class PcmSource:
    """Frames from s16le bytes already in memory (benchmarks, tests, the demo)."""

    def __init__(self, pcm: bytes, frame_samples: int = FRAME_SAMPLES) -> None:
        self._pcm = pcm
        self._frame_samples = frame_samples

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer(self._frame_samples)
        yield from framer.push(self._pcm)
        yield from framer.flush()

    def close(self) -> None:
        pass


class NullSource:
    """Silence at the real-time rate, forever (a board with no microphone wired yet)."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        self._frame_samples = frame_samples
        self._closed = False

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer(self._frame_samples)
        silence = bytes(2 * self._frame_samples)
        start = time.monotonic()
        while not self._closed:
            for chunk in framer.push(silence):
                delay = start + chunk.timestamp_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                yield chunk

    def close(self) -> None:
        self._closed = True
