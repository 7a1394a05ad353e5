"""Local spoken answers ("the bedroom temperature is 21 degrees") from a Debian TTS engine.

The engines run as subprocesses (no model hub, nothing downloaded): espeak-ng, flite, festival.
espeak-ng is the default: measured by `voxhome bench tts` it starts fastest and
has the lowest real-time factor of the three (numbers in the issue-8 report); flite sounds a little
more natural and is the alternative (`voice.tts = "flite"`).
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

_LOGGER = logging.getLogger(__name__)

ENGINES = ("espeak-ng", "flite", "festival")
TIMEOUT_S = 20.0
MAX_TEXT = 600


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


def _command(engine: str, text: str, out: Path) -> tuple[list[str], bytes | None]:
    if engine == "espeak-ng":
        return ["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(out), "--", text], None
    if engine == "flite":
        return ["flite", "-voice", "slt", "-t", text, "-o", str(out)], None
    if engine == "festival":
        return ["text2wave", "-o", str(out)], text.encode()
    raise AudioError("audio-tts", f"unknown TTS engine {engine!r} (have {', '.join(ENGINES)})")


def engine_available(engine: str) -> bool:
    exe = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}.get(engine)
    return exe is not None and shutil.which(exe) is not None


class LocalTts:
    """Synchronous text → speech with one local engine."""

    def __init__(self, engine: str = "espeak-ng", clock: Callable[[], float] = time.perf_counter) -> None:
        if engine not in ENGINES:
            raise AudioError("audio-tts", f"unknown TTS engine {engine!r} (have {', '.join(ENGINES)})")
        self.engine = engine
        self._clock = clock

    def speak(self, text: str) -> Speech:
        text = " ".join(text.split())
        if not text:
            raise AudioError("audio-tts", "nothing to say")
        if len(text) > MAX_TEXT:
            raise AudioError("audio-tts", f"text longer than {MAX_TEXT} characters")
        if not engine_available(self.engine):
            raise AudioError("audio-tts", f"TTS engine {self.engine} is not installed")
        start = self._clock()
        with tempfile.TemporaryDirectory(prefix="voxhome-tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            cmd, stdin = _command(self.engine, text, out)
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
