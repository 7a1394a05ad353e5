"""Make synthesized speech sit beside the earcons: trim the silence around it, match its loudness.

Loudness is a gated RMS in the spirit of EBU R128 / BS.1770 without the K-weighting filter (we
compare speech with tones on one small loudspeaker, not programmes): 50 ms blocks, an absolute
gate at -60 dBFS, then a relative gate 15 dB under the mean of what passed. Pauses between words
therefore don't make a voice look quieter than it sounds.
"""

from __future__ import annotations

import numpy as np

from hal.audio import SAMPLE_RATE

BLOCK_MS = 50
ABS_GATE_DB = -60.0
REL_GATE_DB = -15.0
PEAK_LIMIT = 0.89
"""-1 dBFS: a louder answer is scaled down rather than clipped."""
TRIM_DB = -40.0
"""Silence is anything this far under the loudest 10 ms (the noise floor of every engine here)."""
KEEP_MS = 40
"""Kept around the speech so that consonant tails aren't cut."""


def _blocks(audio: np.ndarray, samples: int) -> np.ndarray:
    n = len(audio) // samples
    return np.asarray(audio[: n * samples], np.float32).reshape(n, samples) if n else np.zeros((0, samples), np.float32)


def loudness_db(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Gated loudness in dBFS (RMS of the blocks that pass both gates); -inf for silence."""
    blocks = _blocks(audio, max(1, rate * BLOCK_MS // 1000))
    if not len(blocks):
        return float("-inf")
    power = np.mean(np.square(blocks, dtype=np.float64), axis=1)
    power = power[power > 10 ** (ABS_GATE_DB / 10)]
    if not len(power):
        return float("-inf")
    power = power[power > np.mean(power) * 10 ** (REL_GATE_DB / 10)]
    return float(10 * np.log10(np.mean(power)))


def trim_silence(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Drop leading and trailing silence (hibari ends every sentence with ~0.9 s of it)."""
    frame = max(1, rate // 100)
    blocks = _blocks(audio, frame)
    if not len(blocks):
        return np.asarray(audio, np.float32)
    level = np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1))
    loud = np.nonzero(level > level.max() * 10 ** (TRIM_DB / 20))[0]
    if not len(loud) or level.max() == 0:
        return np.zeros(0, np.float32)
    keep = rate * KEEP_MS // 1000
    start = max(0, loud[0] * frame - keep)
    end = min(len(audio), (loud[-1] + 1) * frame + keep)
    return np.asarray(audio[start:end], np.float32)


def match_loudness(audio: np.ndarray, target_db: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Scale to `target_db` gated loudness, never past the peak limit."""
    current = loudness_db(audio, rate)
    if not np.isfinite(current):
        return np.asarray(audio, np.float32)
    gain = 10 ** ((target_db - current) / 20)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak * gain > PEAK_LIMIT:
        gain = PEAK_LIMIT / peak
    return (np.asarray(audio, np.float32) * np.float32(gain)).astype(np.float32)
