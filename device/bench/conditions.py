"""Acoustic conditions for evaluations: clean, pink noise, babble, reverberant rooms, far field, fast.

One place for every benchmark (`bench e2e`, `bench wake`) to turn a voice and a text into the audio
a speaker would hear. Everything is seeded: the same (text, voice, condition, seed) gives the same
samples, so renders are cached on disk (~/.cache/voxhome/eval, 16 kHz mono int16 WAV, keyed by a
hash of all inputs and `RENDER_VERSION`).

SNR is speech power over its active part against noise power over the whole clip, the usual
definition for speech-in-noise sets; `measure_snr` computes it the same way, which is how the tests
check that a condition delivers what it says.
"""

from __future__ import annotations

import hashlib
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.bench.voices import (
    HELD_OUT_VOICES,
    SAMPLE_RATE,
    TUNING_VOICES,
    Voice,
    available,
    is_held_out,
    synthesize,
)
from device.errors import AudioError

RENDER_VERSION = 1
"""Bump when a condition's recipe changes, so stale cached renders are never reused."""


@dataclass(frozen=True, slots=True)
class Room:
    size: tuple[float, float, float]
    """metres"""
    rt60: float
    """seconds"""
    distance: float
    """source → microphone, metres"""


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    noise: str = ""
    """'', 'pink' or 'babble'."""
    snr_db: float | None = None
    rooms: tuple[Room, ...] = ()
    """one is picked per render by the seed"""
    speed: float = 1.0
    """speaking-rate factor, applied by the voice's engine"""


_ROOMS = (
    Room((4.0, 3.5, 2.5), 0.35, 1.2),  # bedroom
    Room((6.0, 4.5, 2.7), 0.55, 2.0),  # living room
    Room((3.5, 3.0, 2.4), 0.7, 1.5),  # tiled kitchen
    Room((8.0, 6.0, 3.0), 0.8, 2.5),  # open-plan
)
_FAR_ROOMS = (
    Room((7.0, 5.0, 2.7), 0.5, 4.5),
    Room((9.0, 6.0, 3.0), 0.6, 5.5),
    Room((6.0, 5.0, 2.6), 0.45, 4.0),
)
FAR_NOISE_SNR_DB = 25.0
"""A far talker also meets the room's own noise floor (fridge, ventilation)."""

CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("clean"),
        Condition("pink10", noise="pink", snr_db=10.0),
        Condition("pink5", noise="pink", snr_db=5.0),
        Condition("babble10", noise="babble", snr_db=10.0),
        Condition("reverb", rooms=_ROOMS),
        Condition("far", noise="pink", snr_db=FAR_NOISE_SNR_DB, rooms=_FAR_ROOMS),
        Condition("fast", speed=1.4),
    )
}


def condition(name: str) -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise AudioError("bench-condition", f"unknown condition {name!r} (known: {', '.join(CONDITIONS)})") from None


# -- signals ---------------------------------------------------------------------------------


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(SAMPLE_RATE * seconds), dtype=np.float32)


def concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate([p.astype(np.float32, copy=False) for p in parts])


def noise(seconds: float, seed: int = 0, color: str = "pink") -> np.ndarray:
    """Deterministic noise, unit RMS (pink: a fair stand-in for room and fan noise)."""
    rng = np.random.default_rng(seed)
    n = round(SAMPLE_RATE * seconds)  # int() would lose a sample to float error (65192/16000*16000)
    white = rng.standard_normal(n).astype(np.float32)
    if color == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0
        white = np.fft.irfft(spectrum / np.sqrt(freqs), n).astype(np.float32)
    return white / (np.sqrt(np.mean(white**2)) + 1e-12)


def speech_power(speech: np.ndarray) -> float:
    """Mean power over the active part (samples above 2% of the peak), so pauses don't count."""
    active = speech[np.abs(speech) > 0.02 * (np.abs(speech).max() + 1e-12)]
    return float(np.mean(active**2)) if active.size else float(np.mean(speech**2))


def measure_snr(speech: np.ndarray, noise_part: np.ndarray) -> float:
    return 10.0 * float(np.log10(speech_power(speech) / (float(np.mean(noise_part**2)) + 1e-20)))


def scaled_noise(speech: np.ndarray, unit_noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`unit_noise` (any level, ≥ len(speech)) scaled so speech over it is `snr_db`."""
    part = unit_noise[: len(speech)]
    scale = np.sqrt(speech_power(speech) / 10 ** (snr_db / 10) / (float(np.mean(part**2)) + 1e-20))
    return (scale * part).astype(np.float32)


def limit(audio: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale down (never up) so nothing clips; speech and noise scale together, the SNR stays."""
    top = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / top * peak if top > 0.99 else audio


def mix_at_snr(speech: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add pink noise so that speech power / noise power = snr_db."""
    return limit(speech + scaled_noise(speech, noise(len(speech) / SAMPLE_RATE, seed=seed), snr_db))


BABBLE_SENTENCES = (
    "I think the train was late again this morning because of the weather.",
    "Did you see the match last night? It went to extra time.",
    "We should paint the fence before the summer gets too hot.",
    "My sister is moving to a new flat near the river next month.",
    "The recipe says two cups of flour and a pinch of salt.",
    "Can you believe how expensive the tickets were this year?",
    "He left his umbrella at the office and got soaked on the way home.",
    "The meeting moved to Thursday afternoon, after lunch.",
)


def babble(seconds: float, seed: int, exclude: Voice | None = None, talkers: int = 4) -> np.ndarray:
    """Several other synthetic talkers at once, unit RMS. Drawn from the same side of the voice
    split as `exclude` (the target), so a tuning render never contains a held-out voice."""
    pool = [
        v
        for v in (HELD_OUT_VOICES if exclude is not None and is_held_out(exclude) else TUNING_VOICES)
        if available(v) and (exclude is None or (v.engine, v.name) != (exclude.engine, exclude.name))
    ]
    if not pool:
        raise AudioError("bench-condition", "babble needs other synthetic voices; none is installed")
    rng = np.random.default_rng(seed)
    n = round(SAMPLE_RATE * seconds)
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        voice = pool[int(rng.integers(len(pool)))]
        order = rng.permutation(len(BABBLE_SENTENCES))
        talk = concat(*(synthesize(BABBLE_SENTENCES[i], voice) for i in order[:3]))
        talk = talk / (np.sqrt(np.mean(talk**2)) + 1e-12)
        start = int(rng.integers(0, max(1, len(talk) - n))) if len(talk) > n else 0
        piece = np.resize(talk[start:], n)  # loops a short talker to cover the clip
        out += piece
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def reverberate(audio: np.ndarray, room: Room, seed: int) -> np.ndarray:
    """The talker at `room.distance` from the microphone in a shoebox with `room.rt60`
    (pyroomacoustics image method), level falling with distance; same length as the input."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    absorption, max_order = pra.inverse_sabine(room.rt60, list(room.size))
    shoebox = pra.ShoeBox(
        list(room.size), fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 17)
    )
    length, width, _ = room.size
    mic = np.array([rng.uniform(0.5, length - 0.5), rng.uniform(0.5, width - 0.5), 0.9])
    source = mic
    for _ in range(100):  # a talker position at the wanted distance that fits in the room
        angle = rng.uniform(0, 2 * np.pi)
        candidate = mic + np.array([np.cos(angle) * room.distance, np.sin(angle) * room.distance, 0.7])
        if 0.3 < candidate[0] < length - 0.3 and 0.3 < candidate[1] < width - 0.3:
            source = candidate
            break
    else:
        mic = np.array([0.5, 0.5, 0.9])
        source = np.array([min(length - 0.3, 0.5 + room.distance), 0.5, 1.6])
    shoebox.add_source(list(source), signal=audio.astype(np.float64))
    shoebox.add_microphone(mic)
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], np.float64)
    wet = np.convolve(audio.astype(np.float64), rir)
    # Keep the timeline: drop the propagation delay before the direct path, keep the input length.
    delay = int(np.argmax(np.abs(rir) > 0.5 * np.abs(rir).max()))
    wet = wet[delay : delay + len(audio)]
    # pyroomacoustics scales by 1/(4πr); normalise to the 1 m level so distance sounds as level loss.
    direct = float(np.abs(rir).max()) * max(1.0, float(np.linalg.norm(source - mic)))
    return (wet / (direct + 1e-12)).astype(np.float32)


def apply(speech: np.ndarray, cond: Condition, seed: int, voice: Voice | None = None) -> np.ndarray:
    """The condition's room and noise on dry `speech` (speed is the voice's job, see `render`)."""
    out = speech.astype(np.float32, copy=True)
    if cond.rooms:
        room = cond.rooms[seed % len(cond.rooms)]
        out = reverberate(out, room, seed)
    if cond.noise and cond.snr_db is not None:
        seconds = len(out) / SAMPLE_RATE
        unit = babble(seconds, seed, exclude=voice) if cond.noise == "babble" else noise(seconds, seed=seed)
        # SNR against the dry level for a far talker: the noise floor is the room's, not the talker's.
        reference = speech if cond.rooms else out
        out = out + scaled_noise(reference, unit, cond.snr_db)
    return limit(out)


# -- utterances ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Utterance:
    audio: np.ndarray
    """int16 mono 16 kHz"""
    wake_end: float
    """seconds: where the wake phrase's audio ends (−1 when there is none)"""
    command_start: float
    """seconds: where the command's audio begins"""
    path: Path
    """the cached WAV"""


def eval_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "voxhome" / "eval"
    path.mkdir(parents=True, exist_ok=True)
    return path


def render(
    text: str, voice: Voice, cond: Condition, seed: int = 0, *, wake: str = "", lead: float = 0.6, tail: float = 1.6
) -> Utterance:
    """"<wake>, <text>" as a speaker hears it: silence, the wake phrase, a short seeded pause, the
    command, silence; the condition applied to all of it. Cached (WAV + wake/command times)."""
    spoken = voice.faster(cond.speed) if cond.speed != 1.0 else voice
    key = hashlib.sha256(
        f"{RENDER_VERSION}\n{spoken.label}\n{cond!r}\n{seed}\n{wake}\n{text}\n{lead}\n{tail}".encode()
    ).hexdigest()[:24]
    path = eval_cache_dir() / f"{key}.wav"
    rng = np.random.default_rng(seed)
    wake_audio = synthesize(wake, spoken) if wake else np.zeros(0, np.float32)
    gap = float(rng.uniform(0.2, 0.45)) if wake else 0.0
    wake_end = lead + len(wake_audio) / SAMPLE_RATE if wake else -1.0
    command_start = lead + len(wake_audio) / SAMPLE_RATE + gap
    if path.exists():
        return Utterance(read_pcm16(path), wake_end, command_start, path)
    dry = concat(silence(lead), wake_audio, silence(gap), synthesize(text, spoken), silence(tail))
    pcm = (np.clip(apply(dry, cond, seed, voice), -1.0, 1.0) * 32767.0).astype("<i2")
    write_pcm16(path, pcm)
    return Utterance(pcm, wake_end, command_start, path)


def write_pcm16(path: Path, pcm: np.ndarray) -> None:
    """A 16 kHz mono 16-bit WAV, written whole or not at all (a cache read by parallel runs)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.astype("<i2", copy=False).tobytes())
    os.replace(tmp, path)


def read_pcm16(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as src:
        if src.getframerate() != SAMPLE_RATE or src.getnchannels() != 1 or src.getsampwidth() != 2:
            raise AudioError("bench-cache", f"{path} is not 16 kHz mono int16; delete it")
        return np.frombuffer(src.readframes(src.getnframes()), "<i2").copy()
