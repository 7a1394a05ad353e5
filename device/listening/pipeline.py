"""The listening state machine: pure, fed one event at a time, no I/O, no clock, no asyncio.

    IDLE ──Detection──▶ LISTENING ──VoiceStarted──▶ (speaking) ──VoiceStopped──▶ IDLE
                            └────────────ListenTimeout (nobody spoke)───────────────▶ IDLE

While IDLE only the wake words run; `wants_vad` tells the front end to run the VAD only while
LISTENING, so the always-on cost is the wake words alone. A ring buffer of `preroll_ms` audio is
kept while idle: at a detection the front end runs the VAD over it (`backlog`), and the
utterance starts where the wake word's audio ends (`wakecut.wake_cut_ms`), so a command spoken
before the detection fired keeps its first syllable and none of the wake word is left in it.
The pre-roll's VAD windows only place the cut; the segmenter sees the windows from the
detection on, so the wake word itself is never taken for the command.

Early endpointing: at `early_ms` of silence the pipeline says `SpeechPaused` with the audio so
far; if whoever reads it feeds back `EndNow` for that pause before anyone speaks again, the
utterance ends there (`VoiceStopped` with exactly that audio and the reading), otherwise the
normal end comes at `end_silence_ms` as if nothing happened. While the command is spoken,
`SpeechSoFar` offers the audio so far every `redecode_ms`, so it can be read before the pause.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections import deque

from device.events import (
    SAMPLE_RATE,
    SAMPLE_WIDTH,
    AudioChunk,
    AudioStop,
    Detection,
    EndNow,
    ListenTimeout,
    SpeechPaused,
    SpeechProbability,
    SpeechSoFar,
    StartListening,
    VoiceStarted,
    VoiceStopped,
)
from device.listening.segmenter import (
    Decision,
    Ended,
    Paused,
    Progress,
    Segmenter,
    Started,
    TimedOut,
)
from device.listening.wakecut import keep_until_ms, wake_cut_ms
from device.settings import VadSettings

_LOGGER = logging.getLogger(__name__)

Event = object


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"


class Pipeline:
    def __init__(self, vad: VadSettings) -> None:
        self._vad = vad
        self.state = State.IDLE
        self._ring: deque[AudioChunk] = deque()
        self._ring_ms = 0
        self._utterance: list[AudioChunk] = []
        self._utterance_ms = 0
        self._segmenter: Segmenter | None = None
        self._wake: Detection | None = None
        self._wake_windows: list[SpeechProbability] = []

    def wants_vad(self) -> bool:
        return self.state is State.LISTENING

    def feed(self, event: Event) -> list[Event]:
        match event:
            case AudioChunk():
                self._audio(event)
                return []
            case Detection():
                return self._detection(event)
            case StartListening():
                return self._start_listening(event)
            case SpeechProbability():
                return self._speech(event)
            case AudioStop():
                return [*self._stop(event.timestamp_ms), event]
            case EndNow():
                return self._end_now(event)
            case _:
                return []

    def backlog(self) -> list[AudioChunk]:
        """The utterance's audio so far (the pre-roll after a detection), for the VAD to catch up on."""
        return list(self._utterance)

    def _audio(self, chunk: AudioChunk) -> None:
        if self.state is State.IDLE:
            self._ring.append(chunk)
            self._ring_ms += round(chunk.duration_ms)
            while self._ring and self._ring_ms - round(self._ring[0].duration_ms) >= self._vad.preroll_ms:
                self._ring_ms -= round(self._ring.popleft().duration_ms)
            return
        # Bound memory: the cap plus the pre-roll is the most an utterance can hold.
        if self._utterance_ms < self._vad.max_command_ms + self._vad.start_timeout_ms + self._vad.preroll_ms:
            self._utterance.append(chunk)
            self._utterance_ms += round(chunk.duration_ms)

    def _detection(self, detection: Detection) -> list[Event]:
        if self.state is not State.IDLE:
            _LOGGER.debug("ignoring %s while listening", detection.word)
            return []
        _LOGGER.info("wake word %s (%.2f) at %d ms", detection.word, detection.score, detection.timestamp_ms)
        self.state = State.LISTENING
        self._utterance = list(self._ring)
        self._utterance_ms = self._ring_ms
        self._ring.clear()
        self._ring_ms = 0
        self._segmenter = Segmenter(self._vad, detection.timestamp_ms)
        self._wake = detection
        self._wake_windows = []
        return [detection]

    def _start_listening(self, event: StartListening) -> list[Event]:
        """Listen without a wake word (follow-up, yes/no). No pre-roll: the prompt just ended,
        and what was heard while it played is the device's own voice."""
        if self.state is not State.IDLE:
            return []
        self.state = State.LISTENING
        self._utterance = []
        self._utterance_ms = 0
        self._ring.clear()
        self._ring_ms = 0
        settings = dataclasses.replace(self._vad, start_timeout_ms=event.timeout_ms)
        self._segmenter = Segmenter(settings, event.timestamp_ms)
        return [event]

    def _speech(self, window: SpeechProbability) -> list[Event]:
        if self._segmenter is None:
            return []
        if self._wake is not None:
            if window.timestamp_ms <= keep_until_ms(self._wake):
                self._wake_windows.append(window)
            if window.end_ms <= self._wake.timestamp_ms:
                return []  # the pre-roll: it holds the wake word, which is not the command
        return self._apply(self._segmenter.process(window.timestamp_ms, window.duration_ms, window.probability))

    def _stop(self, at_ms: int) -> list[Event]:
        if self._segmenter is None:
            return []
        return self._apply(self._segmenter.finish(at_ms))

    def _end_now(self, event: EndNow) -> list[Event]:
        if self._segmenter is None:
            return []  # the utterance already ended (the normal end came first)
        return self._apply(self._segmenter.end_now(event.pause_ms, event.decided_ms), event.reading)

    def _command_start(self, end_ms: int) -> int:
        start = self._utterance[0].timestamp_ms if self._utterance else end_ms
        if self._wake is not None:
            start = max(start, wake_cut_ms(self._wake, self._wake_windows, self._vad.threshold))
        return start

    def _apply(self, decisions: list[Decision], reading: object = None) -> list[Event]:
        out: list[Event] = []
        for decision in decisions:
            match decision:
                case Started(start_ms):
                    out.append(VoiceStarted(timestamp_ms=start_ms))
                case Paused(end_ms, decided_ms, short):
                    start = self._command_start(end_ms)
                    out.append(SpeechPaused(end_ms, decided_ms, start, self._audio_between(start, decided_ms), short))
                case Progress(end_ms, decided_ms):
                    start = self._command_start(end_ms)
                    out.append(SpeechSoFar(end_ms, decided_ms, start, self._audio_between(start, decided_ms)))
                case Ended(end_ms, decided_ms, reason):
                    start = self._command_start(end_ms)
                    if self._wake is not None:
                        _LOGGER.debug("command starts at %d ms (wake word decided at %d ms)", start, self._wake.timestamp_ms)
                    # An early end carries the audio its reading was made of, to the sample.
                    audio = self._audio_between(start, decided_ms)
                    _LOGGER.info("speech ended at %d ms (%s), decided at %d ms", end_ms, reason, decided_ms)
                    out.append(VoiceStopped(timestamp_ms=end_ms, start_ms=start, audio=audio, reason=reason, reading=reading))
                    self._to_idle()
                case TimedOut(decided_ms):
                    _LOGGER.info("nobody spoke after the wake word; timeout at %d ms", decided_ms)
                    out.append(ListenTimeout(timestamp_ms=decided_ms))
                    self._to_idle()
        return out

    def _audio_between(self, start_ms: int, before_ms: int) -> bytes:
        """The utterance from `start_ms` (to the sample) up to the chunk that starts at `before_ms`."""
        parts: list[bytes] = []
        for chunk in self._utterance:
            if chunk.timestamp_ms >= before_ms or chunk.end_ms <= start_ms:
                continue
            skip = max(0, start_ms - chunk.timestamp_ms) * SAMPLE_RATE // 1000 * SAMPLE_WIDTH
            parts.append(chunk.audio[skip:])
        return b"".join(parts)

    def _to_idle(self) -> None:
        self.state = State.IDLE
        self._segmenter = None
        self._wake = None
        self._wake_windows = []
        self._utterance = []
        self._utterance_ms = 0
