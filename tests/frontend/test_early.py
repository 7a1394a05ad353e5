"""Early endpointing in the pure pipeline: one pause event per pause, an early end only at a
pause nobody spoke after, and the normal end untouched otherwise."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from device.events import EndNow, SpeechPaused, SpeechSoFar, VoiceStarted, VoiceStopped, to_json
from device.listening.pipeline import State
from device.settings import VadSettings
from models.asr.stop import Stop
from tests.frontend.test_pipeline import SETTINGS, Driver

EARLY = dataclasses.replace(SETTINGS, early_ms=160, quick_ms=0, redecode_ms=0)
"""One pause length, no reading while speaking (both: below)."""
GROWING = dataclasses.replace(SETTINGS, early_ms=160, quick_ms=96, redecode_ms=128)


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


def test_the_growing_command_is_offered_every_redecode_ms_and_once_at_the_first_quiet_window() -> None:
    d = Driver(GROWING)
    d.wake()
    d.audio(800, prob=0.95)
    speech_end = d.t
    d.audio(640, prob=0.02)
    offers = [e for e in d.events if isinstance(e, SpeechSoFar)]
    speaking, quiet = offers[:-1], offers[-1]
    started = next(e.timestamp_ms for e in d.events if isinstance(e, VoiceStarted))
    # While speaking: every 128 ms of audio (4 windows), each with all the audio so far.
    assert [o.decided_ms for o in speaking] == list(range(started + 64 + 128, speech_end + 1, 128))
    assert all(o.timestamp_ms == o.decided_ms for o in speaking)
    assert all(len(o.audio) == 2 * 16 * (o.decided_ms - o.start_ms) for o in offers)
    # Then once in the pause, at its first quiet window, and never again: nothing new is heard.
    assert quiet.timestamp_ms == speech_end and quiet.decided_ms == speech_end + 32


def test_a_short_pause_comes_before_the_early_one_and_each_once() -> None:
    d = Driver(GROWING)
    d.wake()
    d.audio(320, prob=0.95)
    speech_end = d.t
    d.audio(640, prob=0.02)
    pauses = [e for e in d.events if isinstance(e, SpeechPaused)]
    assert [(p.decided_ms - speech_end, p.short) for p in pauses] == [(96, True), (160, False)]
    assert d.types()[-1] == "VoiceStopped"
    # An EndNow at the short pause ends the utterance there, with the audio up to it.
    d = Driver(GROWING)
    d.wake()
    d.audio(320, prob=0.95)
    d.audio(96, prob=0.02)
    short = d.events[-1]
    assert isinstance(short, SpeechPaused) and short.short
    out = d.pipeline.feed(EndNow(d.t, short.timestamp_ms, short.decided_ms, object()))
    assert isinstance(out[0], VoiceStopped) and out[0].audio == short.audio


def test_no_offers_without_early_endpointing() -> None:
    d = Driver(dataclasses.replace(GROWING, early_ms=0))
    d.wake()
    d.audio(800, prob=0.95)
    d.audio(640, prob=0.02)
    assert d.types() == ["Detection", "VoiceStarted", "VoiceStopped"]


def _offer(end_ms: int, heard_ms: int) -> SpeechSoFar:
    return SpeechSoFar(end_ms, heard_ms, 0, bytes(2 * 16 * heard_ms))


def _pause(end_ms: int, decided_ms: int) -> SpeechPaused:
    return SpeechPaused(end_ms, decided_ms, 0, bytes(2 * 16 * decided_ms))


class _SlowReader:
    """A reader that takes `seconds` per reading and says what it read (the scheduling is what is
    tested here; the real decoder runs in tests/assistant/test_early_end.py)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.read: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, heard: SpeechSoFar | SpeechPaused, stop: Stop) -> tuple[int, bool]:
        import threading
        import time

        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        self.read.append(heard.decided_ms)
        return heard.decided_ms, heard.decided_ms > heard.timestamp_ms  # complete once in a pause


class _StoppableReader(_SlowReader):
    """Like the runner: checks its `Stop` between steps of 5 ms."""

    def __call__(self, heard: SpeechSoFar | SpeechPaused, stop: Stop) -> tuple[int, bool]:
        import time

        started = time.monotonic()
        while time.monotonic() - started < self.seconds:
            stop.check()
            time.sleep(0.005)
        self.read.append(heard.decided_ms)
        return heard.decided_ms, heard.decided_ms > heard.timestamp_ms


def test_falling_quiet_gives_up_a_reading_of_half_the_command() -> None:
    asyncio.run(_gives_up())


async def _gives_up() -> None:
    from device.listening.reads import GrowingReads

    reader = _StoppableReader(0.4)
    reads: GrowingReads[int] = GrowingReads(reader)
    reads.offer(_offer(480, 480))  # mid-speech, under way
    await asyncio.sleep(0.05)
    reads.offer(_offer(600, 600))  # still speaking: waits, the one under way goes on
    await asyncio.sleep(0.05)
    assert reads.stopped == 0
    reads.offer(_offer(600, 632))  # quiet after speech that ran to 600: 480 can't be acted on
    latest, _ = await reads.covering(_pause(600, 680))
    assert latest is not None and latest.heard_ms == 632 and latest.complete
    assert reads.stopped == 1 and reader.read == [632]  # 480 given up, 600 replaced while waiting


def test_a_pause_reading_under_way_that_hears_it_all_is_not_given_up() -> None:
    asyncio.run(_keeps_covering())


async def _keeps_covering() -> None:
    from device.listening.reads import GrowingReads

    reader = _StoppableReader(0.1)
    reads: GrowingReads[int] = GrowingReads(reader)
    reads.offer(_offer(480, 512))  # the first quiet window, under way
    latest, _ = await reads.covering(_pause(480, 560))
    assert latest is not None and latest.heard_ms == 512 and reads.stopped == 0 and reader.read == [512]


def test_one_reading_at_a_time_and_only_the_newest_offer_waits() -> None:
    asyncio.run(_one_at_a_time())


async def _one_at_a_time() -> None:
    import threading

    from device.listening.reads import GrowingReads

    reader = _SlowReader(0.05)
    reads: GrowingReads[int] = GrowingReads(reader)
    for heard in (128, 256, 384, 512):  # all offered while the first is being read
        reads.offer(_offer(heard, heard))
    latest, before = await reads.covering(_pause(512, 672))
    # 256 and 384 were replaced while waiting; the pause had nothing complete, so it read itself.
    assert reader.read == [128, 512, 672] and reads.skipped == 2
    assert latest is not None and latest.reading == 672 and latest.complete
    assert before is not None and before.reading == 512
    assert threading.current_thread().name not in reader.threads  # never on the event loop


def test_a_pause_takes_the_reading_under_way_that_heard_all_the_speech() -> None:
    asyncio.run(_pause_takes_the_reading_under_way())


async def _pause_takes_the_reading_under_way() -> None:
    from device.listening.reads import GrowingReads

    reader = _SlowReader(0.05)
    reads: GrowingReads[int] = GrowingReads(reader)
    reads.offer(_offer(480, 480))  # mid-speech: incomplete
    reads.offer(_offer(480, 512))  # the first quiet window: waits for the worker
    latest, before = await reads.covering(_pause(480, 640))
    assert latest is not None and latest.heard_ms == 512 and reader.read == [480, 512]
    assert before is not None and not before.complete
    reads.reset()
    assert reads.latest() is None
    latest, _ = await reads.covering(_pause(480, 640))  # a new utterance: read again
    assert latest is not None and latest.reading == 640 and reader.read == [480, 512, 640]


def test_a_mid_speech_reading_that_heard_it_all_finishes_as_the_pauses_and_the_pause_is_not_read_again() -> None:
    asyncio.run(_finishes_as_the_pause())


async def _finishes_as_the_pause() -> None:
    import time

    from device.listening.reads import GrowingReads

    class Asking(_SlowReader):
        """Like the assistant: after its free decode, asks whether the speaker fell quiet
        within this audio, and if so goes on to the search (complete)."""

        def __call__(self, heard: SpeechSoFar | SpeechPaused, stop: Stop) -> tuple[int, bool]:
            time.sleep(self.seconds)
            self.read.append(heard.decided_ms)
            return heard.decided_ms, heard.decided_ms > heard.timestamp_ms or reads.heard_the_end(heard)

    reader = Asking(0.1)
    reads: GrowingReads[int] = GrowingReads(reader)
    reads.offer(_offer(480, 480))  # the last of the speech, under way
    reads.offer(_offer(480, 512))  # the first quiet window: waits
    latest, _ = await reads.covering(_pause(480, 640))
    assert latest is not None and latest.heard_ms == 480 and latest.complete
    await asyncio.sleep(0.15)
    assert reader.read == [480] and reads.skipped == 1  # the quiet window's offer was never read
    # Speaking again: a reading of speech that goes on hasn't heard the end.
    reads.offer(_offer(700, 700))
    assert not reads.heard_the_end(_offer(700, 700))
    reads.reset()
    reads.offer(_offer(300, 300))
    assert not reads.heard_the_end(_offer(300, 300))  # a new utterance forgets the last pause
    await asyncio.sleep(0.15)
