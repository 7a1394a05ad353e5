"""Audio format conversion, done once at the HAL boundary.

Everything past the HAL is 16 kHz mono s16le in fixed frames (`FRAME_SAMPLES`); this module is
the only place that resamples (soxr, a real band-limited resampler) or mixes channels down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import soxr

from device.events import SAMPLE_RATE, AudioChunk

FRAME_SAMPLES = 160
"""10 ms at 16 kHz: microWakeWord's feature step, and a divisor of everything downstream."""


def to_mono_float(data: np.ndarray) -> np.ndarray:
    """[n] or [n, channels] samples (any dtype) → float32 mono in [-1, 1]."""
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype != np.float32:
        data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    return data


def resample(data: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of float32 mono audio (soxr 'HQ')."""
    if rate_in == rate_out:
        return data
    return soxr.resample(data, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def float_to_pcm16(data: np.ndarray) -> bytes:
    return (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def pcm16_to_float(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0


class StreamResampler:
    """Streaming soxr resampler for sources whose native rate isn't 16 kHz (ALSA devices)."""

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE, channels: int = 1) -> None:
        self._channels = channels
        self._passthrough = rate_in == rate_out
        self._stream = None if self._passthrough else soxr.ResampleStream(
            rate_in, rate_out, 1, dtype="float32", quality="HQ"
        )

    def process(self, data: np.ndarray, last: bool = False) -> np.ndarray:
        mono = to_mono_float(data.reshape(-1, self._channels) if self._channels > 1 else data)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


class Framer:
    """Cuts a stream of s16le bytes into fixed frames stamped with audio time.

    The timestamp is samples-delivered / rate, so it is exact audio time however the source
    buffers, and restarts at 0 only when a new Framer is made (a new stream).
    """

    def __init__(self, frame_samples: int = FRAME_SAMPLES, rate: int = SAMPLE_RATE) -> None:
        self._frame_bytes = frame_samples * 2
        self._rate = rate
        self._pending = bytearray()
        self._samples_out = 0

    @property
    def position_ms(self) -> int:
        return self._samples_out * 1000 // self._rate

    def skip(self, samples: int) -> None:
        """Account for audio lost upstream (an overrun) so timestamps stay true."""
        self._samples_out += samples

    def push(self, audio: bytes) -> Iterator[AudioChunk]:
        self._pending += audio
        while len(self._pending) >= self._frame_bytes:
            frame = bytes(self._pending[: self._frame_bytes])
            del self._pending[: self._frame_bytes]
            yield AudioChunk(frame, timestamp_ms=self._samples_out * 1000 // self._rate, rate=self._rate)
            self._samples_out += self._frame_bytes // 2

    def flush(self) -> Iterator[AudioChunk]:
        """Emit the tail, zero-padded to a whole frame (the models want whole frames)."""
        if self._pending:
            yield from self.push(bytes(self._frame_bytes - len(self._pending)))


def frames_from_pcm(audio: bytes, frame_samples: int = FRAME_SAMPLES) -> Iterable[AudioChunk]:
    framer = Framer(frame_samples)
    yield from framer.push(audio)
    yield from framer.flush()
