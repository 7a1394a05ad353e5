"""Spoken sentences from a Debian TTS engine run as a subprocess: espeak-ng, flite, festival.

Nothing is downloaded and no GPL code is linked in: each engine is a separate program. espeak-ng
is the fallback voice whenever the neural voice (models.tts, `device.voice.neural`) is missing or
broken, and the voice for languages without a packaged neural voice; flite and festival are
alternatives (`[voice] engine`), compared by `voxhome bench tts`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import AudioError
from hal.audio import SAMPLE_RATE
from hal.source import read_audio_file
from models.tts.text import clean

_LOGGER = logging.getLogger(__name__)

ENGINES = ("espeak-ng", "flite", "festival")
TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Speech:
    audio: np.ndarray
    """float32 mono 16 kHz."""
    synth_ms: int
    """Wall time the engine took (start-up included)."""

    @property
    def duration_ms(self) -> int:
        """Speaking time: how long the answer takes to play."""
        return len(self.audio) * 1000 // SAMPLE_RATE


DEFAULT_VOICES = {"espeak-ng": "en-us", "flite": "slt", "festival": "kal_diphone"}


def _command(engine: str, voice: str, speed: float, text: str, out: Path) -> tuple[list[str], bytes | None]:
    if engine == "espeak-ng":
        return ["espeak-ng", "-v", voice, "-s", str(round(165 * speed)), "-w", str(out), "--", text], None
    if engine == "flite":
        return ["flite", "--setf", f"duration_stretch={1 / speed:.2f}", "-voice", voice, "-t", text, "-o", str(out)], None
    if engine == "festival":
        return ["text2wave", "-eval", f"(voice_{voice})", "-o", str(out)], text.encode()
    raise AudioError("audio-tts", f"unknown TTS engine {engine!r} (have {', '.join(ENGINES)})")


def engine_available(engine: str) -> bool:
    exe = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}.get(engine)
    return exe is not None and shutil.which(exe) is not None


class LocalTts:
    """Synchronous text → speech with one local engine."""

    neural = False

    def __init__(
        self,
        engine: str = "espeak-ng",
        clock: Callable[[], float] = time.perf_counter,
        *,
        voice: str = "",
        speed: float = 1.0,
    ) -> None:
        if engine not in ENGINES:
            raise AudioError("audio-tts", f"unknown TTS engine {engine!r} (have {', '.join(ENGINES)})")
        self.engine = engine
        self.voice = voice or DEFAULT_VOICES[engine]
        self.speed = speed
        self._clock = clock

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.voice}"

    def speak(self, text: str) -> Speech:
        text = clean(text)
        if not engine_available(self.engine):
            raise AudioError("audio-tts", f"TTS engine {self.engine} is not installed")
        start = self._clock()
        with tempfile.TemporaryDirectory(prefix="voxhome-tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            cmd, stdin = _command(self.engine, self.voice, self.speed, text, out)
            try:
                proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise AudioError("audio-tts", f"{self.engine} took longer than {TIMEOUT_S} s") from None
            if proc.returncode != 0 or not out.exists():
                err = proc.stderr.decode(errors="replace").strip()[:200]
                raise AudioError("audio-tts", f"{self.engine} failed ({proc.returncode}): {err}")
            audio = read_audio_file(out)
        synth_ms = int((self._clock() - start) * 1000)
        _LOGGER.debug("%s spoke %d ms of audio in %d ms", self.engine, len(audio) * 1000 // SAMPLE_RATE, synth_ms)
        return Speech(audio, synth_ms)
