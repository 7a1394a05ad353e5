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
from hal.audio import FRAME_SAMPLES, Framer, StreamResampler, float_to_pcm16, to_mono_float

_LOGGER = logging.getLogger(__name__)

MAX_FILE_SECONDS = 4 * 3600
BLOCK_SECONDS = 0.5
"""How much of a file is decoded at a time."""


class AudioSource(Protocol):
    def frames(self) -> Iterator[AudioChunk]:
        """Yield frames until the source ends (files) or forever (microphones)."""
        ...

    def close(self) -> None: ...


def _open_audio(path: Path) -> soundfile.SoundFile:
    """Open WAV/FLAC/Ogg of any rate and channel count, checked: missing, unreadable, empty or
    absurd files give an AudioError that names the file and the reason."""
    if not path.is_file():
        raise AudioError("audio-missing", f"audio file {path} does not exist")
    try:
        sound = soundfile.SoundFile(str(path))
    except soundfile.LibsndfileError as err:
        raise _unsupported(path, err) from None
    except (RuntimeError, TypeError) as err:
        raise AudioError("audio-unsupported", f"can't read {path}: {err}") from None
    if sound.frames == 0 or sound.samplerate <= 0:
        sound.close()
        raise AudioError("audio-empty", f"audio file {path} has no audio")
    if sound.frames / sound.samplerate > MAX_FILE_SECONDS:
        sound.close()
        raise AudioError("audio-too-long", f"audio file {path} is longer than {MAX_FILE_SECONDS} s")
    return sound


def _unsupported(path: Path, err: soundfile.LibsndfileError) -> AudioError:
    return AudioError(
        "audio-unsupported", f"can't read {path}: {err.error_string} (supported: WAV, FLAC, Ogg Vorbis/Opus)"
    )


def stream_audio_file(path: str | Path, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """A file as float32 mono 16 kHz blocks, decoded, mixed down and resampled one block at a
    time: memory stays at a block whatever the file's length (an hour is 230 MB as float32)."""
    path = Path(path)
    with _open_audio(path) as sound:
        resampler = StreamResampler(sound.samplerate, SAMPLE_RATE)
        block = max(1, round(sound.samplerate * block_seconds))
        try:
            for data in sound.blocks(blocksize=block, dtype="float32", always_2d=True):
                out = resampler.process(to_mono_float(data))
                if len(out):
                    yield out
        except soundfile.LibsndfileError as err:
            raise _unsupported(path, err) from None
        except (RuntimeError, TypeError) as err:
            raise AudioError("audio-unsupported", f"can't read {path}: {err}") from None
        tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail


def read_audio_file(path: str | Path) -> np.ndarray:
    """A whole (short) file → float32 mono at 16 kHz; long inputs should use `stream_audio_file`."""
    blocks = list(stream_audio_file(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


class FileSource:
    """Frames from an audio file, as fast as they are consumed (or paced like a microphone).

    The file is checked when the source is made (a wrong format fails before anything runs) and
    decoded block by block as frames are taken, never whole.
    """

    def __init__(self, path: str | Path, *, realtime: bool = False, frame_samples: int = FRAME_SAMPLES) -> None:
        self.path = Path(path)
        with _open_audio(self.path) as sound:
            self._samples = round(sound.frames * SAMPLE_RATE / sound.samplerate)
        self._realtime = realtime
        self._frame_samples = frame_samples

    @property
    def duration_ms(self) -> int:
        return self._samples * 1000 // SAMPLE_RATE

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer(self._frame_samples)
        start = time.monotonic()
        for block in stream_audio_file(self.path):
            for chunk in framer.push(float_to_pcm16(block)):
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
