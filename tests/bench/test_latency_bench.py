"""The latency benchmark's own arithmetic: where speech ends, and how turns are scored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.bench.latency import (
    Case,
    _alsa_file_pcms,
    _Recorder,
    _TimedSpeaker,
    score,
    speech_end,
    summarize,
)


def test_speech_end_ignores_trailing_silence_and_soft_noise() -> None:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 300 * t).astype(np.float32)
    hiss = np.random.default_rng(0).normal(0, 1e-4, 8000).astype(np.float32)  # ≈ -74 dB below the tone
    audio = np.concatenate([tone, hiss])
    assert abs(speech_end(audio) - 1.0) <= 0.011


def test_summary_counts_only_right_turns_for_latency() -> None:
    rows: list[dict[str, Any]] = [
        {"right": True, "wrong_publish": False, "publish_ms": 200.0, "confirmation_ms": 260.0,
         "vad_end_ms": 40.0, "ended_ms": 150.0},
        {"right": True, "wrong_publish": False, "publish_ms": 400.0, "confirmation_ms": None,
         "vad_end_ms": 60.0, "ended_ms": None},
        {"right": False, "wrong_publish": True, "publish_ms": None, "confirmation_ms": None,
         "vad_end_ms": 900.0, "ended_ms": 990.0},
    ]
    summary = summarize(rows)
    assert summary["accuracy"] == 0.667
    assert summary["wrong_publishes"] == 1
    assert summary["publish_ms"]["median"] == 300.0
    assert summary["confirmation_ms"]["median"] == 260.0
    assert summary["vad_end_ms"]["median"] == 50.0  # the wrong turn's end does not count
    assert summary["ended_ms"]["median"] == 150.0


def test_the_speaker_is_timed_on_the_real_alsa_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's speaker hands audio to libasound's `file` PCM and times its audible blocks;
    what the file holds is exactly what was written."""
    monkeypatch.delenv("ALSA_CONFIG_PATH", raising=False)  # restored after the test
    files = _alsa_file_pcms(tmp_path, ["ours"])
    speaker = _TimedSpeaker("vox_0")
    quiet, tone = np.zeros(160, "<i2"), (8000 * np.sin(np.arange(160) / 3)).astype("<i2")
    before = time.monotonic()
    for block in (quiet, quiet, tone, tone):
        speaker.write(block.tobytes())
    speaker.close()
    assert len(speaker.audible) == 2 and before + 0.02 <= speaker.audible[0] <= speaker.audible[1]
    assert speaker.audible_samples == 320 and speaker.written == 640
    played = np.fromfile(files["ours"], dtype="<i2")
    assert np.array_equal(played, np.concatenate([quiet, quiet, tone, tone]))


def test_vad_lag_leaves_out_the_pre_roll_run_at_the_wake_word() -> None:
    from device.events import Detection, SpeechProbability

    recorder = _Recorder()
    recorder(Detection("okay_nabu", 0.9, 1000))
    recorder(SpeechProbability(600, 32, 0.9))  # pre-roll, handled late on purpose
    recorder(SpeechProbability(1000, 32, 0.9))
    lag = recorder.vad_lag_ms()
    assert lag["max"] is not None and lag["max"] < 50


def test_an_area_command_is_right_only_when_every_light_of_it_is_switched() -> None:
    room = Case("turn off the lights in the bedroom", "z/bedroom/set", "OFF", (("cmnd/bedside/POWER", "OFF"),))
    both = [(1.0, "z/bedroom/set", '{"state": "OFF"}'), (1.2, "cmnd/bedside/POWER", "OFF")]
    assert score(room, both) == (True, False, 1.2)  # done at its last light
    assert score(room, both[:1]) == (False, False, None)  # one light left on
    wrong = [*both, (1.3, "cmnd/coffee/POWER", "OFF")]
    assert score(room, wrong)[:2] == (False, True)
    assert score(room, [(1.0, "z/bedroom/set", "ON"), both[1]]) == (False, True, None)  # ON is not OFF
    single = Case("turn on the kitchen light", "z/kitchen/set", "ON")
    assert score(single, [(2.0, "z/kitchen/set", '{"state": "ON"}')]) == (True, False, 2.0)
