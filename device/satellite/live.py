"""The utterance as it is spoken: which of the front end's audio Home Assistant has not had yet.

In mode 'ha' HA's pipeline hears the command while the user says it, as an ESPHome voice device
streams it: from the wake word on, frame by frame, not once the device has endpointed it. The
audio is the front end's own (`Pipeline.backlog()`, the utterance so far), so HA hears exactly
what the device would have read: it starts where the wake word's audio ends, found the way the
pipeline finds it (`wakecut.wake_cut_ms` over the same VAD windows: final as soon as the pause
after the word is among them, usually already at the detection; with no pause, once no later
window can count, about 300 ms after it), and it ends with the device's endpoint
(`VoiceStopped`'s audio supplies the tail). Pure: events and chunks in, bytes to send out.
"""

from __future__ import annotations

from collections.abc import Callable

from device.events import (
    SAMPLE_WIDTH,
    AudioChunk,
    Detection,
    SpeechProbability,
    StartListening,
    VoiceStopped,
)
from device.listening.wakecut import NO_PAUSE_BACK_MS, keep_until_ms, wake_cut_ms

SAMPLES_PER_MS = 16

Heard = Callable[[], list[AudioChunk]]
"""The front end's utterance so far (`Pipeline.backlog`): it grows by appending while listening."""


class SpokenAudio:
    def __init__(self, heard: Heard, threshold: float) -> None:
        self._heard = heard
        self._threshold = threshold
        self._wake: Detection | None = None
        self._windows: list[SpeechProbability] = []
        self._start: int | None = None
        """The command's first sample (audio time × 16), once known."""
        self._sent: int | None = None
        """The sample after the last one handed out."""

    def begin(self, event: Detection | StartListening) -> None:
        """A new utterance: after a wake word the start waits for the cut; a follow-up starts at once."""
        self._wake = event if isinstance(event, Detection) else None
        self._windows = []
        self._sent = None
        self._start = None if self._wake is not None else event.timestamp_ms * SAMPLES_PER_MS

    @property
    def started(self) -> bool:
        return self._start is not None

    def window(self, window: SpeechProbability) -> bytes:
        """A VAD window went by: the audio heard since the last call (empty until the start is known)."""
        if self._start is None and self._wake is not None:
            wake = self._wake
            late = window.timestamp_ms > keep_until_ms(wake)
            if not late:
                self._windows.append(window)
            cut = wake_cut_ms(wake, self._windows, self._threshold)
            # The cut scans the windows in order and returns at the first pause after the word, so
            # a pause found in the windows so far is the final cut; only the fallback (no pause
            # yet) can still move, until no later window could count (`keep_until_ms`).
            if not late and cut == wake.end_ms - NO_PAUSE_BACK_MS:
                return b""
            chunks = self._heard()
            first = chunks[0].timestamp_ms if chunks else cut
            self._start = max(first, cut) * SAMPLES_PER_MS
            return self._new(chunks)
        return self._new(self._heard()) if self._start is not None else b""

    def end(self, stopped: VoiceStopped) -> bytes:
        """The device endpointed the utterance: what of it was not handed out yet."""
        base = stopped.start_ms * SAMPLES_PER_MS
        sent = base if self._sent is None else max(self._sent, base)
        self._sent = base + len(stopped.audio) // SAMPLE_WIDTH
        return stopped.audio[(sent - base) * SAMPLE_WIDTH:]

    def _new(self, chunks: list[AudioChunk]) -> bytes:
        assert self._start is not None
        parts: list[bytes] = []
        for chunk in chunks:
            first = chunk.timestamp_ms * SAMPLES_PER_MS
            last = first + len(chunk.audio) // SAMPLE_WIDTH
            lo = max(first, self._start if self._sent is None else self._sent)
            if last <= lo:
                continue
            parts.append(chunk.audio[(lo - first) * SAMPLE_WIDTH:])
            self._sent = last
        return b"".join(parts)
