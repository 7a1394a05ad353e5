"""The latency benchmark's own arithmetic: where speech ends, and how turns are scored."""

from __future__ import annotations

import numpy as np

from device.bench.latency import speech_end, summarize


def test_speech_end_ignores_trailing_silence_and_soft_noise() -> None:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 300 * t).astype(np.float32)
    hiss = np.random.default_rng(0).normal(0, 1e-4, 8000).astype(np.float32)  # ≈ -74 dB below the tone
    audio = np.concatenate([tone, hiss])
    assert abs(speech_end(audio) - 1.0) <= 0.011


def test_summary_counts_only_right_turns_for_latency() -> None:
    rows = [
        {"right": True, "wrong_publish": False, "publish_ms": 200.0, "confirmation_ms": 260.0},
        {"right": True, "wrong_publish": False, "publish_ms": 400.0, "confirmation_ms": None},
        {"right": False, "wrong_publish": True, "publish_ms": None, "confirmation_ms": None},
    ]
    summary = summarize(rows)
    assert summary["accuracy"] == 0.667
    assert summary["wrong_publishes"] == 1
    assert summary["publish_ms"]["median"] == 300.0
    assert summary["confirmation_ms"]["median"] == 260.0
