"""Synthesized speech for benchmarks, evaluations, tests and the demo.

Voices come from Debian's local engines (espeak-ng, flite, festival), so nothing is downloaded.
Every function returns float32 mono at 16 kHz; results are cached on disk by (engine, voice, text)
because synthesis costs far more than the models we evaluate with it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import AudioError
from hal.source import read_audio_file


@dataclass(frozen=True, slots=True)
class Voice:
    engine: str
    """'espeak-ng', 'flite' or 'festival'."""
    name: str
    rate: int | None = None
    """espeak-ng words per minute / flite duration stretch x100 (None: engine default)."""

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}" + (f"@{self.rate}" if self.rate else "")


VOICES: tuple[Voice, ...] = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-gb", 150),
    Voice("espeak-ng", "en-us+f3", 160),
    Voice("espeak-ng", "en-gb-scotland"),
    Voice("flite", "slt"),
    Voice("flite", "kal"),
    Voice("flite", "rms"),
    Voice("flite", "awb"),
    Voice("festival", "kal_diphone"),
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "voxhome" / "speech"
    path.mkdir(parents=True, exist_ok=True)
    return path


def available(voice: Voice) -> bool:
    exe = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[voice.engine]
    return shutil.which(exe) is not None


def synthesize(text: str, voice: Voice = VOICES[0]) -> np.ndarray:
    """Speak `text` with `voice` → float32 mono 16 kHz (cached)."""
    key = hashlib.sha256(f"{voice.label}\n{text}".encode()).hexdigest()[:24]
    wav = cache_dir() / f"{key}.wav"
    if not wav.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            _run_engine(text, voice, out, Path(tmp))
            os.replace(out, wav)
    return read_audio_file(wav)


def _run_engine(text: str, voice: Voice, out: Path, tmp: Path) -> None:
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-w", str(out)]
        if voice.rate:
            cmd += ["-s", str(voice.rate)]
        cmd.append(text)
    elif voice.engine == "flite":
        cmd = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)]
        if voice.rate:
            cmd[1:1] = ["--setf", f"duration_stretch={voice.rate / 100:.2f}"]
    elif voice.engine == "festival":
        script = tmp / "in.txt"
        script.write_text(text)
        cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out), str(script)]
    else:
        raise AudioError("tts-engine", f"unknown speech engine {voice.engine!r}")
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise AudioError("tts-engine", f"{cmd[0]} is not installed (scripts/setup.sh installs it)") from None
    except subprocess.CalledProcessError as err:
        raise AudioError("tts-engine", f"{cmd[0]} failed: {err.stderr.decode(errors='replace')[:200]}") from None


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def noise(seconds: float, seed: int = 0, color: str = "pink") -> np.ndarray:
    """Deterministic noise, unit RMS (pink: a fair stand-in for room and fan noise)."""
    rng = np.random.default_rng(seed)
    n = round(16000 * seconds)  # int() would lose a sample to float error (65192/16000*16000)
    white = rng.standard_normal(n).astype(np.float32)
    if color == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0
        white = np.fft.irfft(spectrum / np.sqrt(freqs), n).astype(np.float32)
    return white / (np.sqrt(np.mean(white**2)) + 1e-12)


def mix_at_snr(speech: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add noise so that speech power / noise power = snr_db (speech power over its active part)."""
    active = speech[np.abs(speech) > 0.02 * (np.abs(speech).max() + 1e-12)]
    p_speech = float(np.mean(active**2)) if active.size else float(np.mean(speech**2))
    scale = np.sqrt(p_speech / 10 ** (snr_db / 10))
    mixed = speech + scale * noise(len(speech) / 16000, seed=seed)[: len(speech)]
    peak = float(np.abs(mixed).max())
    return mixed / peak * 0.9 if peak > 0.99 else mixed


def concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate([p.astype(np.float32, copy=False) for p in parts])
