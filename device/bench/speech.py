"""Synthesized speech for benchmarks, tests and the demo: the short names older code imports.

The voices, their tuning / held-out split and the renderer live in `device.bench.voices`; noise,
mixing and the acoustic conditions in `device.bench.conditions`. `VOICES` stays the list the
existing benches and tests were written against (tuning voices first, then flite awb and festival
kal_diphone, which are held out: new evaluations pick from `TUNING_VOICES` / `HELD_OUT_VOICES`).
"""

from __future__ import annotations

from device.bench.conditions import concat, mix_at_snr, noise, silence
from device.bench.voices import Voice, available, cache_dir, synthesize

__all__ = ["VOICES", "Voice", "available", "cache_dir", "concat", "mix_at_snr", "noise", "silence", "synthesize"]

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
