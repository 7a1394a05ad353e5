"""The cloud reply on its way to the speaker: jitter buffer, 24 → 16 kHz, and what was heard.

Synchronous and socket-free: the session hands it audio deltas, it hands 16 kHz chunks to the
`AudioSink`. It keeps, per assistant item, where the item starts in the reply stream and how much
of it arrived, so a barge-in can truncate the item at what actually left the speaker
(`audio_end_ms`), clamped to what was received, as the server requires.

Assumption about the sink (hal/sink.py): `played_ms` counts the current stream and a new stream
starts after `stop()`; the reply's own zero is read just before its first chunk is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from device.cloud.protocol import BYTES_PER_MS, PCM_RATE
from device.events import SAMPLE_RATE, AudioChunk
from hal.sink import AudioSink

_SAMPLES_PER_MS = SAMPLE_RATE // 1000


@dataclass
class _Item:
    response_id: str
    offset_ms: int
    """Reply ms handed to the sink (or held) before this item's first sample."""
    received_ms: int = 0
    resampler: Any = None


@dataclass(frozen=True, slots=True)
class Heard:
    """What a barge-in cut: ms the user heard, and the item to truncate (if any)."""

    played_ms: int
    item_id: str | None
    audio_end_ms: int
    response_ids: frozenset[str]


class ReplyPlayer:
    """One reply's playback; make a new one per turn (and after each barge-in)."""

    def __init__(self, sink: AudioSink, clock: Callable[[], float], jitter_ms: int) -> None:
        self.sink = sink
        self.clock = clock
        self.jitter_ms = jitter_ms
        self.items: dict[str, _Item] = {}
        self.queued_ms = 0.0
        self.started = False
        self.first_sample_at: float | None = None
        self.first_delta_at: float | None = None
        self._base_played = 0
        self._pending: list[np.ndarray] = []
        self._pending_ms = 0.0

    def delta(self, response_id: str, item_id: str, audio: bytes) -> None:
        """24 kHz pcm16 from the server → resampled → jitter buffer / sink."""
        if self.first_delta_at is None:
            self.first_delta_at = self.clock()
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = _Item(response_id, round(self.queued_ms + self._pending_ms))
            item.resampler = soxr.ResampleStream(PCM_RATE, SAMPLE_RATE, 1, dtype="int16", quality="HQ")
        item.received_ms += len(audio) // BYTES_PER_MS
        if item.resampler is not None:
            self._queue(item.resampler.resample_chunk(np.frombuffer(audio, dtype="<i2")))

    def finish_item(self, item_id: str) -> None:
        """The item's audio is complete: drain the resampler's tail and stop holding audio back."""
        item = self.items.get(item_id)
        if item is not None and item.resampler is not None:
            self._queue(item.resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True))
            item.resampler = None
        self.flush()

    def flush(self) -> None:
        if self._pending:
            samples = np.concatenate(self._pending)
            self._pending, self._pending_ms = [], 0.0
            self._to_sink(samples)

    def end(self) -> None:
        """The reply is complete: everything held goes to the sink, and the sink plays its tail."""
        self.flush()
        if self.started:
            self.sink.flush()

    @property
    def unplayed_ms(self) -> int:
        """Reply handed to the sink that the listener hasn't heard yet."""
        return max(0, int(self.queued_ms) - self.played_ms) if self.started else 0

    def discard(self) -> None:
        """Forget audio not yet handed to the sink (a failed turn)."""
        self._pending, self._pending_ms = [], 0.0

    @property
    def played_ms(self) -> int:
        return max(0, self.sink.played_ms - self._base_played) if self.started else 0

    def stop(self) -> Heard:
        """Barge-in: silence the sink first, then work out what was heard."""
        stopped = self.sink.stop()
        self.discard()
        heard = max(0, stopped - self._base_played) if self.started else 0
        playing = [(item_id, item) for item_id, item in self.items.items() if item.offset_ms <= heard]
        responses = frozenset(item.response_id for item in self.items.values())
        if not self.started or not playing:
            return Heard(heard, None, 0, responses)
        item_id, item = playing[-1]
        return Heard(heard, item_id, min(heard - item.offset_ms, item.received_ms), responses)

    def _queue(self, samples: np.ndarray) -> None:
        # Hold the first `jitter_ms` so that a slow link doesn't open the reply with a gap.
        if len(samples) == 0:
            return
        if self.started:
            self._to_sink(samples)
            return
        self._pending.append(samples)
        self._pending_ms += len(samples) / _SAMPLES_PER_MS
        if self._pending_ms >= self.jitter_ms:
            self.flush()

    def _to_sink(self, samples: np.ndarray) -> None:
        if not self.started:
            self.started = True
            self._base_played = self.sink.played_ms
            self.first_sample_at = self.clock()
        chunk = AudioChunk(samples.astype("<i2").tobytes(), timestamp_ms=round(self.queued_ms))
        self.queued_ms += len(samples) / _SAMPLES_PER_MS
        self.sink.play(chunk)
