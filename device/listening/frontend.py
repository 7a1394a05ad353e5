"""The always-on front end: runs the models on each audio chunk and feeds the pipeline.

Wake words run on every chunk; the VAD runs only while the pipeline is listening (after a wake
word), and restarts from a clean state each time. It starts on the pipeline's backlog (the
pre-roll, which holds the wake word and the pause after it: that is where the command is cut),
so its windows line up with audio time from the start of that backlog. Synchronous: the
service calls it, and so do the benchmarks.
"""

from __future__ import annotations

import logging

from device.events import AudioChunk, AudioStop, SpeechProbability
from device.listening.pipeline import Event, Pipeline
from device.settings import Settings
from models.base import Vad, WakeModel
from models.vad import SileroVad
from models.wake import WakeWordDetector

_LOGGER = logging.getLogger(__name__)


class Frontend:
    def __init__(self, wake: WakeModel, vad: Vad, pipeline: Pipeline) -> None:
        self.wake = wake
        self.vad = vad
        self.pipeline = pipeline
        self._vad_origin_ms: int | None = None
        self._vad_windows = 0
        self.vad_windows_run = 0
        """How many VAD windows ran in total (the benchmark and tests check VAD stays off)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Frontend:
        # The VAD first: if it can't load, no TFLite interpreter exists yet whose destructor,
        # run while the error unwinds, would replace the real error with a bare SystemError.
        vad = SileroVad.from_builtin()
        return cls(WakeWordDetector.from_settings(settings.wake), vad, Pipeline(settings.vad))

    def process(self, chunk: AudioChunk) -> list[Event]:
        out: list[Event] = []
        for detection in self.wake.process_streaming(chunk.audio, chunk.timestamp_ms):
            out += self.pipeline.feed(detection)
        out += self.pipeline.feed(chunk)
        if not self.pipeline.wants_vad():
            self._vad_origin_ms = None
            return out
        audio = chunk.audio
        if self._vad_origin_ms is None:
            self.vad.reset()
            # The backlog ends with this chunk (the pipeline kept it), so nothing is scored twice.
            backlog = self.pipeline.backlog() or [chunk]
            self._vad_origin_ms = backlog[0].timestamp_ms
            self._vad_windows = 0
            audio = b"".join(c.audio for c in backlog)
        window_ms = self.vad.window_samples * 1000 // 16000
        for probability in self.vad.process_streaming(audio):
            start = self._vad_origin_ms + self._vad_windows * self.vad.window_samples * 1000 // 16000
            self._vad_windows += 1
            self.vad_windows_run += 1
            window = SpeechProbability(start, window_ms, probability)
            out.append(window)
            out += self.pipeline.feed(window)
            if not self.pipeline.wants_vad():
                # The command ended inside this chunk; the rest of its windows belong to nobody.
                self._vad_origin_ms = None
                break
        return out

    def finish(self, timestamp_ms: int) -> list[Event]:
        return self.pipeline.feed(AudioStop(timestamp_ms))

    def close(self) -> None:
        self.wake.close()
        self.vad.close()
