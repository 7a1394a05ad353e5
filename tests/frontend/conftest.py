"""Fixtures for the front-end tests: synthesized speech (cached on disk) and loaded models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from device.bench.speech import VOICES, Voice, concat, silence, synthesize
from device.settings import WakeWordSettings
from hal.audio import float_to_pcm16
from models.wake import WakeWordDetector, resolve_word

SR = 16000
EN_US = VOICES[0]
SLT = Voice("flite", "slt")


def speech(text: str, voice: Voice = EN_US) -> np.ndarray:
    return synthesize(text, voice)


def pcm(*parts: np.ndarray) -> bytes:
    return float_to_pcm16(concat(*parts))


def active_end_s(audio: np.ndarray, offset_s: float = 0.0) -> float:
    """Where the sound really stops (last sample above -40 dB of the peak), in seconds."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return offset_s + (loud[-1] + 1) / SR


@pytest.fixture(scope="session")
def command_clip() -> tuple[np.ndarray, float]:
    """'okay nabu … turn on the kitchen light' and the true end of the command (s)."""
    wake = speech("okay nabu")
    command = speech("turn on the kitchen light")
    lead, gap = silence(0.7), silence(0.4)
    audio = concat(lead, wake, gap, command, silence(2.0))
    return audio, active_end_s(command, (len(lead) + len(wake) + len(gap)) / SR)


@pytest.fixture(scope="session")
def command_wav(tmp_path_factory: pytest.TempPathFactory, command_clip: tuple[np.ndarray, float]) -> Path:
    path = tmp_path_factory.mktemp("audio") / "okay_nabu_kitchen.wav"
    soundfile.write(str(path), command_clip[0], SR)
    return path


@pytest.fixture(scope="session")
def four_words() -> Iterator[WakeWordDetector]:
    detector = WakeWordDetector(
        resolve_word(WakeWordSettings(m)) for m in ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
    )
    yield detector
    detector.close()
