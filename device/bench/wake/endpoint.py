"""End-of-speech error on clean "okay nabu, <command>" clips (kept from the first wake bench).

The pipeline's end-of-speech time minus the true end of the command's sound, through the same
front end the device runs (wake word → VAD → segmenter).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from device.bench.conditions import concat, silence
from device.bench.voices import SAMPLE_RATE, Voice, synthesize
from device.bench.wake.dataset import COMMANDS
from device.bench.wake.traces import builtin_specs
from device.events import VoiceStopped
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.settings import VadSettings
from hal.audio import float_to_pcm16, frames_from_pcm
from models.vad import SileroVad
from models.wake import WakeWordDetector


def active_end(audio: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return (loud[-1] + 1) / SAMPLE_RATE


def end_of_speech(voices: Sequence[Voice], commands: Sequence[str] = COMMANDS[:6]) -> list[str]:
    settings = VadSettings()
    detector = WakeWordDetector(builtin_specs())
    vad = SileroVad.from_builtin()
    errors: list[float] = []
    missed = 0
    for voice in voices:
        for command in commands:
            wake = synthesize("okay nabu", voice)
            spoken = synthesize(command, voice)
            lead = 0.7 + len(wake) / SAMPLE_RATE + 0.4
            audio = concat(silence(0.7), wake, silence(0.4), spoken, silence(2.0))
            true_end_ms = 1000 * (lead + active_end(spoken))
            detector.reset()
            frontend = Frontend(detector, vad, Pipeline(settings))
            stops = [e for c in frames_from_pcm(float_to_pcm16(audio)) for e in frontend.process(c) if isinstance(e, VoiceStopped)]
            if not stops:
                missed += 1
                continue
            errors.append(stops[0].timestamp_ms - true_end_ms)
    if not errors:
        return [f"end of speech: no clip woke and ended ({missed} tried)", ""]
    absolute = [abs(e) for e in errors]
    within = sum(a <= 300 for a in absolute)
    return [
        f"end of speech on {len(errors)} clean commands ({len(voices)} voices x {len(commands)}; {missed} without wake/end): "
        f"error median {statistics.median(errors):+.0f} ms, mean |error| {statistics.mean(absolute):.0f} ms, "
        f"max |error| {max(absolute):.0f} ms, within 300 ms: {within}/{len(errors)}",
        f"  (the end is decided {settings.end_silence_ms} ms of silence later: vad.end_silence_ms)",
    ]
