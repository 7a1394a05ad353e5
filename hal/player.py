"""The one audio output path: prompts, local answers and the cloud's reply all play through here.

`Player` implements `hal.sink.AudioSink`. `play()` only queues; a playback thread hands 10 ms
blocks to an `Output` (ALSA, a WAV file, or nothing), applying the volume with short linear ramps
so that starting, stopping, ducking and volume changes never click. Every block written is also
handed to the reference tap, so the echo canceller sees exactly what the loudspeaker was given.
The played position counts samples handed to the device minus what the device still holds.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile

from device.errors import AudioError
from device.events import AudioChunk
from device.settings import SpeakerSettings
from hal.audio import FRAME_SAMPLES, SAMPLE_RATE, StreamResampler, float_to_pcm16, pcm16_to_float

_LOGGER = logging.getLogger(__name__)

STOP_WAIT_S = 0.5
VOLUME_STEPS = 10


class Output(Protocol):
    def write(self, audio: bytes) -> None:
        """Hand s16le mono 16 kHz to the device; may block until the device has room."""
        ...

    def queued_samples(self) -> int:
        """Samples written but not heard yet (0 where the device can't say)."""
        ...

    def close(self) -> None: ...


class NullOutput:
    """Discards audio; with `realtime` it paces writes like a sound card would."""

    def __init__(self, realtime: bool = True, sleep: Callable[[float], None] = time.sleep) -> None:
        self._realtime = realtime
        self._sleep = sleep

    def write(self, audio: bytes) -> None:
        if self._realtime:
            self._sleep(len(audio) / 2 / SAMPLE_RATE)

    def queued_samples(self) -> int:
        return 0

    def close(self) -> None:
        pass


class WavOutput(NullOutput):
    """Writes what is played to a 16 kHz mono WAV file (tests, the demo, `voxhome say --out`)."""

    def __init__(self, path: str | Path, realtime: bool = False, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(realtime, sleep)
        try:
            self._file = soundfile.SoundFile(str(path), "w", SAMPLE_RATE, 1, "PCM_16")
        except (OSError, RuntimeError) as err:
            raise AudioError("audio-device", f"can't write {path}: {err}") from None

    def write(self, audio: bytes) -> None:
        self._file.write(np.frombuffer(audio, dtype="<i2"))
        super().write(audio)

    def close(self) -> None:
        self._file.close()


class AlsaOutput:
    """The ALSA speaker (hal.alsa.AlsaSink); opened lazily so that importing never needs a card."""

    def __init__(self, device: str) -> None:
        from hal.alsa import AlsaSink

        self._sink = AlsaSink(device)

    def write(self, audio: bytes) -> None:
        self._sink.write(audio)

    def queued_samples(self) -> int:
        # The ring buffer's fill level (pyalsaaudio has no snd_pcm_delay); it leaves out only the
        # codec/DAC latency, well under a millisecond.
        return self._sink.queued_frames()

    def close(self) -> None:
        self._sink.close()


def open_output(settings: SpeakerSettings) -> Output:
    if settings.backend == "alsa":
        return AlsaOutput(settings.device)
    if settings.backend == "file":
        if not settings.file:
            raise AudioError("audio-device", "speaker backend 'file' needs audio.speaker.file")
        return WavOutput(settings.file, realtime=True)
    return NullOutput()


class Player:
    """Queues audio and plays it on a thread; `stop()` fades out within `fade_ms`."""

    def __init__(
        self,
        output: Output,
        settings: SpeakerSettings | None = None,
        reference: Callable[[AudioChunk], None] | None = None,
    ) -> None:
        settings = settings or SpeakerSettings()
        self._output = output
        self._volume = settings.volume
        self._duck_volume = settings.duck_volume
        self._fade = max(1, settings.fade_ms * SAMPLE_RATE // 1000)
        self._reference = reference
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._partial = np.zeros(0, np.float32)
        self._resamplers: dict[int, StreamResampler] = {}
        self._cond = threading.Condition()
        self._stop_requested = False
        self._stopped = threading.Event()
        self._closed = False
        self._busy = False
        self._ducked = False
        self._level = 0.0
        self._stream_samples = 0
        self._output_samples = 0
        self._error: AudioError | None = None
        self._thread = threading.Thread(target=self._run, name="voxhome-player", daemon=True)
        self._thread.start()

    # --- the AudioSink interface ---------------------------------------------------------

    def play(self, chunk: AudioChunk) -> None:
        if chunk.width != 2 or chunk.channels != 1:
            raise AudioError("audio-format", f"player takes mono s16le, got width={chunk.width} channels={chunk.channels}")
        audio = pcm16_to_float(chunk.audio)
        if chunk.rate != SAMPLE_RATE:
            audio = self._resamplers.setdefault(chunk.rate, StreamResampler(chunk.rate)).process(audio)
        self.play_audio(audio)

    def play_audio(self, audio: np.ndarray) -> None:
        """Queue float32 mono 16 kHz audio."""
        with self._cond:
            if self._closed:
                raise AudioError("audio-closed", "the player is closed")
            data = np.concatenate([self._partial, np.asarray(audio, np.float32).reshape(-1)])
            whole = len(data) // FRAME_SAMPLES * FRAME_SAMPLES
            self._queue.extend(data[:whole].reshape(-1, FRAME_SAMPLES))
            self._partial = data[whole:]
            self._cond.notify_all()

    def flush(self) -> None:
        """Queue the last partial block (end of an utterance), padded with silence."""
        with self._cond:
            if len(self._partial):
                block = np.zeros(FRAME_SAMPLES, np.float32)
                block[: len(self._partial)] = self._partial
                self._queue.append(block)
                self._partial = np.zeros(0, np.float32)
                self._cond.notify_all()

    def stop(self) -> int:
        with self._cond:
            playing = self._busy or bool(self._queue)
            self._partial = np.zeros(0, np.float32)
            self._resamplers.clear()  # the next stream must not inherit the filter state of this one
            if playing:
                self._stopped.clear()
                self._stop_requested = True
                self._cond.notify_all()
        if playing and not self._stopped.wait(STOP_WAIT_S):
            _LOGGER.warning("playback did not stop within %s s", STOP_WAIT_S)
        with self._cond:
            played = self.played_ms
            self._stream_samples = 0
            self._level = 0.0
        return played

    @property
    def played_ms(self) -> int:
        heard = max(0, self._stream_samples - self._output.queued_samples())
        return heard * 1000 // SAMPLE_RATE

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        self._output.close()

    # --- controls ----------------------------------------------------------------------------

    @property
    def volume(self) -> float:
        return self._volume

    def set_volume(self, volume: float) -> None:
        """Change the volume at run time (ramped over `fade_ms`)."""
        if not 0.0 <= volume <= 1.0:
            raise AudioError("audio-bad-volume", f"volume must be between 0 and 1, not {volume}")
        with self._cond:
            self._volume = float(volume)

    def set_level(self, level: int, steps: int = VOLUME_STEPS) -> None:
        """"Set volume to 4": a level on the 0..`steps` scale people say out loud."""
        if not 0 <= level <= steps:
            raise AudioError("audio-bad-volume", f"volume level must be between 0 and {steps}, not {level}")
        self.set_volume(level / steps)

    def step(self, delta: int, steps: int = VOLUME_STEPS) -> int:
        """"Volume up/down": move by `delta` levels (clamped); returns the new level."""
        level = min(steps, max(0, round(self._volume * steps) + delta))
        self.set_volume(level / steps)
        return level

    def duck(self, on: bool = True) -> None:
        """Lower the volume while the user talks over the device (barge-in in progress)."""
        with self._cond:
            self._ducked = on

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued has been handed to the device; False on timeout."""
        self.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            if self._error is not None:
                raise self._error
        return True

    @property
    def output_ms(self) -> int:
        """Everything ever written to the device (the reference tap's clock)."""
        return self._output_samples * 1000 // SAMPLE_RATE

    # --- the playback thread ---------------------------------------------------------------

    def _target(self) -> float:
        return self._volume * (self._duck_volume if self._ducked else 1.0)

    def _ramp(self, n: int, target: float) -> np.ndarray:
        """Per-sample gains from the current level towards `target`, at most 1/fade per sample."""
        step = 1.0 / self._fade
        steps = np.arange(1, n + 1, dtype=np.float32) * step
        if target >= self._level:
            gains = np.minimum(self._level + steps, target)
        else:
            gains = np.maximum(self._level - steps, target)
        self._level = float(gains[-1]) if n else self._level
        return gains.astype(np.float32)

    def _next(self) -> tuple[np.ndarray, bool] | None:
        with self._cond:
            while not self._queue and not self._stop_requested and not self._closed:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait()
            if self._closed:
                return None
            self._busy = True
            if self._stop_requested:
                self._stop_requested = False
                block = self._queue.popleft() if self._queue and self._level > 0 else np.zeros(0, np.float32)
                self._queue.clear()
                return block, True
            return self._queue.popleft(), False

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            block, stopping = item
            if stopping:
                # One last block that ramps to silence, so a barge-in never clicks.
                gains = self._ramp(len(block), 0.0)
                self._level = 0.0
            else:
                gains = self._ramp(len(block), self._target())
            if len(block):
                self._write(block * gains)
            if stopping:
                self._stopped.set()

    def _write(self, audio: np.ndarray) -> None:
        pcm = float_to_pcm16(audio)
        try:
            self._output.write(pcm)
        except AudioError as err:
            _LOGGER.error("playback failed: %s", err.message)
            with self._cond:
                self._error = err
                self._queue.clear()
            return
        with self._cond:
            start_ms = self._output_samples * 1000 // SAMPLE_RATE
            self._stream_samples += len(audio)
            self._output_samples += len(audio)
        if self._reference is not None:
            self._reference(AudioChunk(pcm, timestamp_ms=start_ms))
