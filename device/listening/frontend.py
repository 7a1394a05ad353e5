"""The always-on front end: runs the models on each audio chunk and feeds the pipeline.

Wake words run on every chunk; the VAD runs only while the pipeline is listening (after a wake
word), and restarts from a clean state each time. It starts on the pipeline's backlog (the
pre-roll, which holds the wake word and the pause after it: that is where the command is cut),
so its windows line up with audio time from the start of that backlog. Synchronous: the
service calls it, and so do the benchmarks.

With a second stage (`verifier`, models/wake_verify.py; `[wake] verify`), a detection is passed on
only if Whisper, reading the last 1.5 s of audio before it, agrees the wake phrase was said; a
rejected hit is dropped (logged at debug). The first stage's own refractory still applies to it.
The front end keeps those 1.5 s itself: the pipeline's pre-roll is only as long as the VAD needs.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from device.events import AudioChunk, AudioStop, Detection, SpeechProbability
from device.listening.pipeline import Event, Pipeline
from device.settings import Settings
from models.base import Vad, WakeModel
from models.vad import SileroVad
from models.wake_compose import build_wake_model

if TYPE_CHECKING:
    from models.wake_verify import WakeVerifier

_LOGGER = logging.getLogger(__name__)


class Frontend:
    def __init__(self, wake: WakeModel, vad: Vad, pipeline: Pipeline, verifier: WakeVerifier | None = None) -> None:
        self.wake = wake
        self.vad = vad
        self.pipeline = pipeline
        self.verifier = verifier
        """Second stage for first-stage hits; None passes every detection on."""
        self._recent: deque[AudioChunk] = deque()
        self._recent_ms = 0.0
        self.rejected = 0
        """First-stage hits the verifier dropped."""
        self._vad_origin_ms: int | None = None
        self._vad_windows = 0
        self.vad_windows_run = 0
        """How many VAD windows ran in total (the benchmark and tests check VAD stays off)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Frontend:
        # The VAD first: if it can't load, no TFLite interpreter exists yet whose destructor,
        # run while the error unwinds, would replace the real error with a bare SystemError.
        vad = SileroVad.from_builtin()
        frontend = cls(build_wake_model(settings.wake), vad, Pipeline(settings.vad))
        if settings.wake.verify:
            from pathlib import Path

            from models.asr.factory import ensure_asr_bundle
            from models.asr.runner import WhisperOnnx

            bundle = Path(settings.asr.bundle) if settings.asr.bundle else ensure_asr_bundle()
            frontend.verify_with(WhisperOnnx.load(bundle, threads=settings.asr.threads))
        return frontend

    def verify_with(self, asr: object) -> None:
        """Turn the second stage on with this Whisper runner (the service's own: no second copy)."""
        from models.asr.runner import WhisperOnnx
        from models.wake_verify import WakeVerifier

        if not isinstance(asr, WhisperOnnx):
            _LOGGER.warning("wake verification needs the Whisper recognizer, not %s: the first stage decides alone",
                            type(asr).__name__)
            return
        self.verifier = WakeVerifier(asr, self.wake.words)

    def process(self, chunk: AudioChunk) -> list[Event]:
        out: list[Event] = []
        if self.verifier is not None:
            self._remember(chunk)
        for detection in self.wake.process_streaming(chunk.audio, chunk.timestamp_ms):
            if self.verifier is not None and not self.pipeline.wants_vad() and not self._verified(detection):
                continue
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

    def _remember(self, chunk: AudioChunk) -> None:
        assert self.verifier is not None
        self._recent.append(chunk)
        self._recent_ms += chunk.duration_ms
        keep_ms = self.verifier.window_samples * 1000 / 16000
        while self._recent and self._recent_ms - self._recent[0].duration_ms >= keep_ms:
            self._recent_ms -= self._recent.popleft().duration_ms

    def _verified(self, detection: Detection) -> bool:
        assert self.verifier is not None
        if detection.word not in self.verifier.words or not self._recent:
            return True  # no phrase to check it against: the first stage decides alone
        start_ms = self._recent[0].timestamp_ms
        pcm = np.frombuffer(b"".join(c.audio for c in self._recent), "<i2")
        # The window ends at the decision: the audio after it isn't the wake word's.
        end = max(0, min(len(pcm), int((detection.timestamp_ms - start_ms) * 16)))
        verdict = self.verifier.score(detection.word, pcm[:end])
        if not verdict.accepted:
            self.rejected += 1
            _LOGGER.debug("verifier rejected %s at %d ms (gap %.2f, heard %r)", detection.word,
                          detection.timestamp_ms, verdict.gap, verdict.free_text)
        return verdict.accepted

    def finish(self, timestamp_ms: int) -> list[Event]:
        return self.pipeline.feed(AudioStop(timestamp_ms))

    def close(self) -> None:
        self.wake.close()
        self.vad.close()
