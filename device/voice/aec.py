"""Acoustic echo cancellation: speexdsp's MDF canceller plus its residual-echo suppressor.

A ctypes binding to the system libspeexdsp (apt libspeexdsp-dev): the PyPI bindings are either
unmaintained since 2018 (`speexdsp`) or need a compiler toolchain at install time, while the
C API we use is five functions. The far-end reference is what `hal.player.Player` handed to the
speaker (its reference tap feeds `ReferenceBuffer`); the microphone frames are cleaned before
wake word and VAD see them.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator

import numpy as np

from device.errors import AudioError
from device.events import AudioChunk
from hal.audio import FRAME_SAMPLES, SAMPLE_RATE
from hal.source import AudioSource

_SPEEX_ECHO_SET_SAMPLING_RATE = 24
_SPEEX_PREPROCESS_SET_ECHO_STATE = 24
_SPEEX_PREPROCESS_SET_DENOISE = 0


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as err:
        raise AudioError("audio-aec-unavailable", f"libspeexdsp is not installed ({err})") from None
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.speex_echo_state_reset.argtypes = [ctypes.c_void_p]
    lib.speex_preprocess_state_init.restype = ctypes.c_void_p
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return lib


class EchoCanceller:
    """Synchronous, resettable: one 10 ms mic frame + the matching 10 ms reference → clean frame.

    `suppress` adds speex's residual-echo suppressor. Off by default: on the bench echo set it
    adds < 0.5 dB ERLE but costs near-end wake words in double talk and delays the output by a
    frame; it may be worth turning on for loudspeakers with strong non-linear distortion.
    """

    def __init__(self, filter_ms: int = 200, frame_samples: int = FRAME_SAMPLES, suppress: bool = False) -> None:
        self._lib = _load()
        self._frame = frame_samples
        self._echo = self._lib.speex_echo_state_init(frame_samples, filter_ms * SAMPLE_RATE // 1000)
        if not self._echo:
            raise AudioError("audio-aec-unavailable", "speex_echo_state_init failed")
        rate = ctypes.c_int(SAMPLE_RATE)
        self._lib.speex_echo_ctl(self._echo, _SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._pre: int | None = None
        if suppress:
            self._pre = self._lib.speex_preprocess_state_init(frame_samples, SAMPLE_RATE)
            self._lib.speex_preprocess_ctl(self._pre, _SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
            # Noise suppression would also dull the near-end speech the wake word needs.
            off = ctypes.c_int(0)
            self._lib.speex_preprocess_ctl(self._pre, _SPEEX_PREPROCESS_SET_DENOISE, ctypes.byref(off))
        self._out = np.zeros(frame_samples, dtype=np.int16)

    @property
    def frame_samples(self) -> int:
        return self._frame

    @property
    def delay_samples(self) -> int:
        """Output lags input by one frame when the suppressor runs (its overlap-add window)."""
        return self._frame if self._pre is not None else 0

    def process(self, mic: bytes, reference: bytes) -> bytes:
        n = self._frame * 2
        if len(mic) != n or len(reference) != n:
            raise AudioError("audio-format", f"echo canceller takes {self._frame}-sample frames")
        rec = np.frombuffer(mic, dtype=np.int16).copy()
        play = np.frombuffer(reference, dtype=np.int16).copy()
        self._lib.speex_echo_cancellation(self._echo, rec.ctypes.data, play.ctypes.data, self._out.ctypes.data)
        if self._pre is not None:
            self._lib.speex_preprocess_run(self._pre, self._out.ctypes.data)
        return self._out.tobytes()

    def process_array(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Whole float32 signals (bench, tests) → cleaned float32, frame by frame."""
        n = min(len(mic), len(reference)) // self._frame * self._frame
        m = (np.clip(mic[:n], -1, 1) * 32767).astype("<i2")
        r = (np.clip(reference[:n], -1, 1) * 32767).astype("<i2")
        out = np.empty(n, np.int16)
        for i in range(0, n, self._frame):
            out[i : i + self._frame] = np.frombuffer(
                self.process(m[i : i + self._frame].tobytes(), r[i : i + self._frame].tobytes()), np.int16
            )
        return out.astype(np.float32) / 32768.0

    def reset(self) -> None:
        self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        if self._pre is not None:
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._pre = None
        if self._echo:
            self._lib.speex_echo_state_destroy(self._echo)
            self._echo = None


class ReferenceBuffer:
    """What the player played, waiting to be paired with the mic frames that heard it.

    Fed from the player's thread (`push`, the reference tap), read from the mic path (`take`).
    When nothing is playing, the reference is silence and the canceller passes the mic through.
    """

    def __init__(self, max_ms: int = 2000) -> None:
        self._lock = threading.Lock()
        self._samples: collections.deque[np.ndarray] = collections.deque()
        self._count = 0
        self._max = max_ms * SAMPLE_RATE // 1000

    def push(self, chunk: AudioChunk) -> None:
        with self._lock:
            self._samples.append(np.frombuffer(chunk.audio, dtype=np.int16))
            self._count += chunk.samples
            while self._count > self._max:
                # The mic path stalled: keep only the newest audio so the alignment recovers.
                self._count -= len(self._samples.popleft())

    def take(self, samples: int) -> bytes:
        out = np.zeros(samples, np.int16)
        filled = 0
        with self._lock:
            while filled < samples and self._samples:
                head = self._samples[0]
                n = min(samples - filled, len(head))
                out[filled : filled + n] = head[:n]
                filled += n
                if n == len(head):
                    self._samples.popleft()
                else:
                    self._samples[0] = head[n:]
                self._count -= n
        return out.tobytes()


def cancel_echo(frames: Iterator[AudioChunk], canceller: EchoCanceller, reference: ReferenceBuffer) -> Iterator[AudioChunk]:
    """The mic path stage: each 10 ms mic frame minus the echo of what the player played."""
    for frame in frames:
        if frame.samples != canceller.frame_samples:
            raise AudioError("audio-format", f"echo canceller needs {canceller.frame_samples}-sample frames")
        clean = canceller.process(frame.audio, reference.take(frame.samples))
        yield AudioChunk(clean, timestamp_ms=frame.timestamp_ms)


class EchoCancelledSource:
    """An `hal.source.AudioSource` whose frames have the player's echo removed (wrap the mic with it)."""

    def __init__(self, source: AudioSource, canceller: EchoCanceller, reference: ReferenceBuffer) -> None:
        self._source = source
        self._canceller = canceller
        self._reference = reference

    def frames(self) -> Iterator[AudioChunk]:
        return cancel_echo(self._source.frames(), self._canceller, self._reference)

    def close(self) -> None:
        self._source.close()
        self._canceller.close()
