"""A neural voice (models.tts runner) behind the same `speak(text) -> Speech` as the Debian engines.

The runner speaks at its own rate (hibari 24 kHz, Piper 22.05 kHz); this resamples to the
player's 16 kHz once, here, so everything past it is the one audio format.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from device.voice.tts import Speech
from hal.audio import SAMPLE_RATE, resample
from models.tts.base import VoiceRunner
from models.tts.text import clean

_LOGGER = logging.getLogger(__name__)


class NeuralTts:
    neural = True

    def __init__(self, runner: VoiceRunner, *, speed: float = 1.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self._runner = runner
        self.speed = speed
        self._clock = clock

    @property
    def name(self) -> str:
        return self._runner.name

    @property
    def engine(self) -> str:
        return self._runner.name

    def speak(self, text: str) -> Speech:
        text = clean(text)
        start = self._clock()
        audio = resample(self._runner.synthesize(text, self.speed), self._runner.sample_rate, SAMPLE_RATE)
        synth_ms = int((self._clock() - start) * 1000)
        _LOGGER.debug("%s spoke %d ms of audio in %d ms", self.name, len(audio) * 1000 // SAMPLE_RATE, synth_ms)
        return Speech(audio, synth_ms)

    def close(self) -> None:
        self._runner.close()
