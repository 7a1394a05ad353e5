"""ALSA microphone and speaker through pyalsaaudio.

The microphone survives what real boards do: overruns (counted, the audio clock advanced past
the lost span so timestamps stay true) and a device that disappears (USB mic unplugged): it is
reopened with capped exponential backoff instead of crashing the service.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import alsaaudio

from device.errors import AudioError
from device.events import SAMPLE_RATE, AudioChunk
from device.settings import MicSettings
from hal.audio import FRAME_SAMPLES, Framer

_LOGGER = logging.getLogger(__name__)


@dataclass
class AlsaStats:
    overruns: int = 0
    reopens: int = 0
    frames: int = 0


# libasound's error handler: (file, line, function, err, fmt, ...). The variadic tail is never
# read, so a fixed-argument callback is safe on the Linux ABIs we run on (x86_64, aarch64, armhf).
_ErrorHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)


@functools.cache
def route_alsa_errors() -> object | None:
    """Send libasound's own error lines (it prints them to stderr) to our log at debug level.

    The error we raise already says what failed; a device that is gone would otherwise repeat
    eight lines of ALSA internals into the journal at every reopen attempt. Cached: the callback
    must live as long as the process, and installing it once is enough.
    """
    name = ctypes.util.find_library("asound")
    if name is None:
        return None

    def handler(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
        _LOGGER.debug("libasound %s:%d %s: error %d (%s)", (file or b"").decode(errors="replace"), line,
                      (function or b"").decode(errors="replace"), err, (fmt or b"").decode(errors="replace"))

    callback = _ErrorHandler(handler)
    try:
        ctypes.CDLL(name).snd_lib_error_set_handler(callback)
    except (OSError, AttributeError):
        return None
    return callback


def open_pcm(direction: Literal["capture", "playback"], device: str, period_frames: int, periods: int,
             *, nonblock: bool = False) -> alsaaudio.PCM:
    """A 16 kHz mono s16le PCM (plughw/default convert for us); AudioError naming the device."""
    route_alsa_errors()
    try:
        return alsaaudio.PCM(
            type=alsaaudio.PCM_CAPTURE if direction == "capture" else alsaaudio.PCM_PLAYBACK,
            mode=alsaaudio.PCM_NONBLOCK if nonblock else alsaaudio.PCM_NORMAL,
            device=device,
            channels=1,
            rate=SAMPLE_RATE,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=period_frames,
            periods=periods,
        )
    except alsaaudio.ALSAAudioError as err:
        raise AudioError("audio-device", f"can't open ALSA {direction} device '{device}': {err}") from None


def open_capture(device: str, period_frames: int, periods: int) -> alsaaudio.PCM:
    return open_pcm("capture", device, period_frames, periods)


class AlsaSource:
    """16 kHz mono s16le frames from an ALSA PCM (plughw/default convert rates for us)."""

    def __init__(
        self,
        settings: MicSettings,
        *,
        frame_samples: int = FRAME_SAMPLES,
        sleep: Callable[[float], None] = time.sleep,
        max_reopens: int | None = None,
    ) -> None:
        self._settings = settings
        self._frame_samples = frame_samples
        self._sleep = sleep
        self._max_reopens = max_reopens
        self._closed = threading.Event()
        self.stats = AlsaStats()

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer(self._frame_samples)
        pcm = self._open_with_backoff()
        try:
            while not self._closed.is_set():
                try:
                    length, data = pcm.read()
                except alsaaudio.ALSAAudioError as err:
                    _LOGGER.warning("ALSA read failed on '%s' (%s); reopening", self._settings.device, err)
                    pcm.close()
                    pcm = self._open_with_backoff()
                    continue
                if length < 0:
                    # -EPIPE: the ring buffer overflowed while we were late. The audio is gone;
                    # advance the clock by the buffer size so later timestamps stay honest.
                    self.stats.overruns += 1
                    framer.skip(self._settings.period_frames * self._settings.buffer_periods)
                    _LOGGER.debug("ALSA overrun #%d", self.stats.overruns)
                    continue
                if length == 0:
                    continue
                audio = data[: length * 2] if len(data) > length * 2 else data
                if len(audio) % 2:
                    audio = audio[:-1]
                for chunk in framer.push(audio):
                    self.stats.frames += 1
                    yield chunk
        finally:
            pcm.close()

    def _open_with_backoff(self) -> alsaaudio.PCM:
        delay = self._settings.reopen_backoff_s
        attempt = 0
        while True:
            try:
                pcm = open_capture(self._settings.device, self._settings.period_frames, self._settings.buffer_periods)
                if attempt:
                    self.stats.reopens += 1
                    _LOGGER.info("ALSA device '%s' reopened after %d attempts", self._settings.device, attempt)
                return pcm
            except AudioError:
                attempt += 1
                if self._closed.is_set() or (self._max_reopens is not None and attempt > self._max_reopens):
                    raise
                if attempt == 1:
                    _LOGGER.warning("ALSA device '%s' unavailable; retrying with backoff", self._settings.device)
                self._sleep(delay)
                delay = min(delay * 2, self._settings.reopen_backoff_max_s)

    def close(self) -> None:
        self._closed.set()


class AlsaSink:
    """Plays 16 kHz mono s16le through an ALSA playback PCM."""

    def __init__(self, device: str = "default", period_frames: int = 320, periods: int = 4) -> None:
        self._pcm = open_pcm("playback", device, period_frames, periods)

    def write(self, audio: bytes) -> None:
        try:
            self._pcm.write(audio)
        except alsaaudio.ALSAAudioError as err:
            raise AudioError("audio-device", f"ALSA playback failed: {err}") from None

    def drop(self) -> None:
        """Discard what is queued in the device (barge-in)."""
        self._pcm.drop()

    def queued_frames(self) -> int:
        """Frames written but not played yet (buffer size minus free space); 0 if ALSA can't say."""
        try:
            return max(0, int(self._pcm.info()["buffer_size"]) - int(self._pcm.avail()))
        except (alsaaudio.ALSAAudioError, KeyError, TypeError, ValueError):
            return 0

    def close(self) -> None:
        self._pcm.close()
