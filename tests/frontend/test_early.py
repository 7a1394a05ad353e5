"""Early endpointing in the pure pipeline: one pause event per pause, an early end only at a
pause nobody spoke after, and the normal end untouched otherwise."""

from __future__ import annotations

import dataclasses

import pytest

from device.events import EndNow, SpeechPaused, VoiceStopped, to_json
from device.listening.pipeline import State
from device.settings import VadSettings
from tests.frontend.test_pipeline import SETTINGS, Driver

EARLY = dataclasses.replace(SETTINGS, early_ms=160)


def test_a_pause_is_said_once_with_the_audio_so_far_and_the_normal_end_still_comes() -> None:
    d = Driver(EARLY)
    d.wake()
    d.audio(800, prob=0.95)
    speech_end = d.t
    d.audio(640, prob=0.02)
    assert d.types() == ["Detection", "VoiceStarted", "SpeechPaused", "VoiceStopped"]
    paused, stopped = d.events[2], d.events[3]
    assert isinstance(paused, SpeechPaused) and isinstance(stopped, VoiceStopped)
    assert paused.timestamp_ms == speech_end and paused.decided_ms == speech_end + 160
    assert paused.start_ms == stopped.start_ms
    assert len(paused.audio) == 2 * 16 * (paused.decided_ms - paused.start_ms)
    assert stopped.reason == "silence" and stopped.reading is None
    assert stopped.audio.startswith(paused.audio) and len(stopped.audio) > len(paused.audio)


def test_each_pause_is_said_again_after_speech_resumes() -> None:
    d = Driver(EARLY)
    d.wake()
    d.audio(320, prob=0.95)
    d.audio(192, prob=0.02)  # a pause past early_ms, short of end_silence_ms
    d.audio(320, prob=0.95)
    d.audio(640, prob=0.02)
    assert d.types() == ["Detection", "VoiceStarted", "SpeechPaused", "SpeechPaused", "VoiceStopped"]


def test_end_now_ends_at_the_pause_with_exactly_the_audio_that_was_read() -> None:
    d = Driver(EARLY)
    d.wake()
    d.audio(800, prob=0.95)
    d.audio(192, prob=0.02)
    paused = d.events[-1]
    assert isinstance(paused, SpeechPaused)
    d.audio(64, prob=0.02)  # the reading takes a while; the pipeline keeps listening
    reading = object()
    out = d.pipeline.feed(EndNow(d.t, paused.timestamp_ms, paused.decided_ms, reading))
    assert [type(e).__name__ for e in out] == ["VoiceStopped"]
    stopped = out[0]
    assert isinstance(stopped, VoiceStopped)
    assert stopped.reason == "early" and stopped.reading is reading
    assert stopped.timestamp_ms == paused.timestamp_ms and stopped.audio == paused.audio
    assert d.pipeline.state is State.IDLE
    assert to_json(stopped)["read_early"] is True  # the reading itself never reaches the edge
    d.audio(640, prob=0.02)
    assert d.types().count("VoiceStopped") == 0  # no second end for the same utterance


def test_end_now_after_speech_resumed_changes_nothing() -> None:
    d = Driver(EARLY)
    d.wake()
    d.audio(320, prob=0.95)
    d.audio(192, prob=0.02)
    paused = d.events[-1]
    assert isinstance(paused, SpeechPaused)
    d.audio(320, prob=0.95)  # "... to 40 percent": the user kept speaking
    assert d.pipeline.feed(EndNow(d.t, paused.timestamp_ms, paused.decided_ms, object())) == []
    assert d.pipeline.state is State.LISTENING
    d.audio(640, prob=0.02)
    stopped = d.events[-1]
    assert isinstance(stopped, VoiceStopped) and stopped.reason == "silence" and stopped.reading is None
    assert stopped.timestamp_ms == d.t - 640


def test_end_now_for_an_utterance_that_already_ended_is_ignored() -> None:
    d = Driver(EARLY)
    d.wake()
    d.audio(320, prob=0.95)
    d.audio(640, prob=0.02)
    paused = next(e for e in d.events if isinstance(e, SpeechPaused))
    assert d.pipeline.feed(EndNow(d.t, paused.timestamp_ms, paused.decided_ms, object())) == []
    d.wake()  # a new utterance: a late EndNow for the old pause must not end it
    d.audio(320, prob=0.95)
    assert d.pipeline.feed(EndNow(d.t, paused.timestamp_ms, paused.decided_ms, object())) == []
    assert d.pipeline.state is State.LISTENING


def test_zero_turns_it_off_and_bad_values_are_refused() -> None:
    d = Driver(SETTINGS)
    d.wake()
    d.audio(320, prob=0.95)
    d.audio(640, prob=0.02)
    assert "SpeechPaused" not in d.types()
    with pytest.raises(ValueError, match="early_ms"):
        VadSettings(early_ms=-1)
