"""The pure state machine: transitions driven by events and audio time only."""

from __future__ import annotations

from device.events import (
    AudioChunk,
    AudioStop,
    Detection,
    ListenTimeout,
    SpeechProbability,
    VoiceStarted,
    VoiceStopped,
)
from device.listening.pipeline import Pipeline, State
from device.listening.wakecut import NO_PAUSE_BACK_MS
from device.settings import VadSettings

SETTINGS = VadSettings(preroll_ms=300, speech_start_ms=64, end_silence_ms=320, max_command_ms=2000, start_timeout_ms=1000,
                       early_ms=0)
"""The plain endpointer (early endpointing: tests/frontend/test_early.py)."""


class Driver:
    """Feeds 32 ms of audio plus its VAD window at a time, like the front end does."""

    def __init__(self, settings: VadSettings = SETTINGS) -> None:
        self.pipeline = Pipeline(settings)
        self.t = 0
        self.events: list[object] = []

    def audio(self, ms: int, prob: float | None = None) -> None:
        for _ in range(ms // 32):
            self.events += self.pipeline.feed(AudioChunk(bytes(1024), timestamp_ms=self.t))
            if prob is not None and self.pipeline.wants_vad():
                self.events += self.pipeline.feed(SpeechProbability(self.t, 32, prob))
            self.t += 32

    def wake(self) -> None:
        self.events += self.pipeline.feed(Detection("okay_nabu", 0.97, self.t))

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def test_idle_ignores_vad_and_does_not_want_it() -> None:
    d = Driver()
    assert not d.pipeline.wants_vad()
    d.events += d.pipeline.feed(SpeechProbability(0, 32, 0.99))
    d.audio(640, prob=0.99)
    assert d.events == [] and d.pipeline.state is State.IDLE


def test_wake_speech_end_back_to_idle() -> None:
    d = Driver()
    d.audio(640)
    d.wake()
    assert d.pipeline.wants_vad()
    d.audio(128, prob=0.05)
    d.audio(800, prob=0.95)
    speech_end = d.t
    d.audio(640, prob=0.02)
    assert d.types() == ["Detection", "VoiceStarted", "VoiceStopped"]
    started, stopped = d.events[1], d.events[2]
    assert isinstance(started, VoiceStarted) and started.timestamp_ms == 640 + 128
    assert isinstance(stopped, VoiceStopped) and stopped.reason == "silence"
    assert stopped.timestamp_ms == speech_end
    # The utterance starts where the wake word ended (no VAD windows over the pre-roll here,
    # so at the detector's estimate, which defaults to the detection, less the margin that
    # keeps a first syllable), not at the start of the pre-roll.
    assert stopped.start_ms == 640 - NO_PAUSE_BACK_MS
    assert len(stopped.audio) == 2 * 16 * (speech_end + SETTINGS.end_silence_ms - stopped.start_ms)
    assert d.pipeline.state is State.IDLE and not d.pipeline.wants_vad()


def test_short_blip_is_not_speech_and_a_pause_does_not_end_the_command() -> None:
    d = Driver()
    d.wake()
    d.audio(32, prob=0.9)  # 32 ms < speech_start_ms
    d.audio(64, prob=0.1)
    d.audio(320, prob=0.9)
    d.audio(256, prob=0.1)  # a pause shorter than end_silence_ms
    d.audio(320, prob=0.45)  # soft speech: above threshold - hysteresis
    d.audio(320, prob=0.9)
    assert d.types() == ["Detection", "VoiceStarted"]
    assert d.events[1].timestamp_ms == 96  # type: ignore[attr-defined]


def test_nobody_speaks_times_out() -> None:
    d = Driver()
    d.wake()
    d.audio(1500, prob=0.01)
    assert d.types() == ["Detection", "ListenTimeout"]
    assert isinstance(d.events[1], ListenTimeout) and d.events[1].timestamp_ms == 1024
    assert d.pipeline.state is State.IDLE


def test_endless_speech_is_capped() -> None:
    d = Driver()
    d.wake()
    d.audio(3000, prob=0.99)
    assert d.types() == ["Detection", "VoiceStarted", "VoiceStopped"]
    stopped = d.events[2]
    assert isinstance(stopped, VoiceStopped) and stopped.reason == "max_length"
    length = stopped.timestamp_ms - d.events[1].timestamp_ms  # type: ignore[attr-defined]
    assert SETTINGS.max_command_ms <= length < SETTINGS.max_command_ms + 32  # one VAD window


def test_second_wake_while_listening_is_ignored() -> None:
    d = Driver()
    d.wake()
    d.audio(320, prob=0.9)
    d.wake()
    assert d.types() == ["Detection", "VoiceStarted"]


def test_audio_stop_closes_an_open_command_and_passes_through() -> None:
    d = Driver()
    d.wake()
    d.audio(320, prob=0.9)
    d.events += d.pipeline.feed(AudioStop(d.t))
    assert d.types() == ["Detection", "VoiceStarted", "VoiceStopped", "AudioStop"]
    assert d.events[2].reason == "end_of_audio"  # type: ignore[attr-defined]
    idle = Driver()
    assert idle.pipeline.feed(AudioStop(0)) == [AudioStop(0)]
    waiting = Driver()
    waiting.wake()
    assert [type(e).__name__ for e in waiting.pipeline.feed(AudioStop(100))] == ["ListenTimeout", "AudioStop"]


def test_preroll_ring_is_bounded_while_idle() -> None:
    d = Driver()
    d.audio(10_000)
    wake_ms = d.t
    d.wake()
    # The pre-roll the front end runs the VAD over (to find where the wake word ended).
    backlog = d.pipeline.backlog()
    assert SETTINGS.preroll_ms <= wake_ms - backlog[0].timestamp_ms < SETTINGS.preroll_ms + 32
    d.audio(64, prob=0.9)
    d.audio(400, prob=0.0)
    stopped = d.events[-1]
    assert isinstance(stopped, VoiceStopped) and stopped.start_ms == wake_ms - NO_PAUSE_BACK_MS


def test_start_listening_without_wake_word_has_its_own_timeout_and_no_preroll() -> None:
    from device.events import StartListening

    d = Driver()
    d.audio(640, prob=0.99)  # the device's own prompt: must not become part of the follow-up
    d.events += d.pipeline.feed(StartListening(d.t, timeout_ms=2500, reason="confirm"))
    assert d.pipeline.wants_vad()
    listen_at = d.t
    d.audio(1600, prob=0.02)  # past the usual 1000 ms start timeout, inside the follow-up's
    assert d.types() == ["StartListening"]
    d.audio(640, prob=0.95)
    d.audio(640, prob=0.02)
    assert d.types() == ["StartListening", "VoiceStarted", "VoiceStopped"]
    stopped = d.events[2]
    assert isinstance(stopped, VoiceStopped) and stopped.start_ms >= listen_at


def test_start_listening_times_out_and_is_ignored_while_listening() -> None:
    from device.events import StartListening

    d = Driver()
    d.wake()
    assert d.pipeline.feed(StartListening(d.t, timeout_ms=2500)) == []
    d2 = Driver()
    d2.events += d2.pipeline.feed(StartListening(0, timeout_ms=800))
    d2.audio(960, prob=0.01)
    assert d2.types() == ["StartListening", "ListenTimeout"]
    assert d2.pipeline.state is State.IDLE
