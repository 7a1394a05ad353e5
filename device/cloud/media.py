"""WebRTC media for the realtime session: a paced Opus source, and the reply's order of events.

`PacedTrack` sends pushed audio in 20 ms frames at 48 kHz, in real time or a set number of times
faster (the device's utterance, already buffered when the turn goes to the cloud; with
impairments, the fake server's voice). `ReplyOrder` is pure: it attributes decoded reply
audio to the response that is playing and holds `response.done` until that response's audio has
ended, so the client sees the WebSocket's order of events.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np
import soxr
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from device.cloud import protocol as p
from device.cloud.transport import Frame

RTP_RATE = 48000
FRAME_SAMPLES = 960
"""20 ms at 48 kHz: one Opus packet."""
FLUSH_FRAMES = 5
"""Silence after each push: aiortc's receiver holds 4 frames back (its audio jitter buffer's
prefetch), so without these the last 80 ms would wait for the next utterance."""
TAIL_S = 0.06
"""After `output_audio_buffer.stopped`, frames still in flight (the network's jitter) count
towards the reply this long; then the resampler's last samples go out with the reply's end."""
RESCHEDULE_S = 0.1
"""A track this far behind its schedule has paused (nothing to send), not merely woken late."""


class PacedTrack(MediaStreamTrack):
    """An audio track that sends what it is given in real time, and nothing in between.

    The device's microphone side of the call (and, with impairments, the fake server's voice).
    Between pushes `recv()` waits, so nothing is encoded or sent while the speaker is idle; RTP
    time follows the wall clock across the pause, as the receiver's jitter buffer expects. A push
    sent faster than real time keeps RTP time contiguous (one frame's samples per frame), so the
    receiver sees the same stream, early.
    """

    kind = "audio"
    delay_s = 0.0
    """One-way delay before pushed audio goes out (the fake's RTT)."""
    flush_frames = FLUSH_FRAMES

    def __init__(self) -> None:
        super().__init__()
        self._frames: deque[tuple[float, np.ndarray, bool, float]] = deque()
        """(ready at, samples, flush, seconds to the next frame)."""
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._origin: float | None = None
        self._due = 0.0
        self._next_pts = 0

    def push(self, pcm: bytes, rate: int, speed: float = 1.0) -> None:
        """pcm16 mono at `rate` → 20 ms frames at 48 kHz sent `speed` times real time, then a flush
        of silence."""
        samples = np.frombuffer(pcm, dtype="<i2")
        up = np.asarray(soxr.resample(samples, rate, RTP_RATE, quality="HQ"), dtype="<i2")
        up = np.concatenate([up, np.zeros(-len(up) % FRAME_SAMPLES, dtype="<i2")])
        ready = time.monotonic() + self.delay_s
        # Only the last push's flush survives: a reply pushed in pieces stays one stream.
        while self._frames and self._frames[-1][2]:
            self._frames.pop()
        step = FRAME_SAMPLES / RTP_RATE / speed
        self._frames.extend((ready, frame, False, step) for frame in up.reshape(-1, FRAME_SAMPLES))
        silence = np.zeros(FRAME_SAMPLES, dtype="<i2")
        self._frames.extend((ready, silence, True, step) for _ in range(self.flush_frames))
        self._empty.clear()
        self._ready.set()

    def clear(self) -> None:
        self._frames.clear()
        self._empty.set()

    async def drained(self) -> None:
        await self._empty.wait()

    def _lost(self) -> bool:
        return False

    def _late_s(self) -> float:
        return 0.0

    async def recv(self) -> av.AudioFrame:
        while True:
            while not self._frames:
                self._empty.set()
                self._ready.clear()
                await self._ready.wait()
                if self.readyState != "live":
                    raise MediaStreamError
            now = time.monotonic()
            if self._origin is None:
                self._origin = now
            # Pace on a schedule, not by sleeping 20 ms after each frame (that would drift late);
            # a new schedule only after a pause, so a late wake-up doesn't shift RTP time.
            due = self._due + self._frames[0][3]
            self._due = max(due if now - due < RESCHEDULE_S else now, self._frames[0][0])
            wait = self._due + self._late_s() - now
            if wait > 0:
                await asyncio.sleep(wait)
            if not self._frames:
                continue  # cleared while waiting
            _, samples, flush, _ = self._frames.popleft()
            if not self._frames:
                self._empty.set()
            # RTP time: one frame on from the last, or the wall clock's after a pause.
            pts = max(self._next_pts, round((self._due - self._origin) * RTP_RATE))
            if pts - self._next_pts < FRAME_SAMPLES // 2:
                pts = self._next_pts  # the schedule's rounding, not a pause
            self._next_pts = pts + FRAME_SAMPLES
            if not flush and self._lost():
                continue  # its 20 ms pass unsent: the receiver sees a jump in RTP time
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RTP_RATE
            frame.pts = pts
            frame.time_base = fractions.Fraction(1, RTP_RATE)
            return frame


@dataclass
class ReplyOrder:
    """Attributes decoded audio to the response that is playing and holds `response.done` back
    until that response's audio has ended, so the client sees the WebSocket's order of events."""

    playing: str | None = None
    item: dict[str, str] = field(default_factory=dict)
    """response id → the assistant item carrying its audio."""
    open_audio: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)
    """response id → its response.done frame, waiting for the audio to end."""

    def on_frame(self, text: str) -> tuple[list[Frame], tuple[str, float] | None]:
        """A data-channel message: pass it on now, or hold it (a completed response still playing).

        Also returns (response id, tail s) when the message ends a response's audio.
        """
        if len(text) > p.MAX_FRAME_BYTES:
            return [text], None  # the client's parser drops it; don't decode it twice
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return [text], None  # the client's parser reports it
        if not isinstance(data, dict):
            return [text], None
        kind, rid = data.get("type"), data.get("response_id")
        if kind == "response.output_item.added" and isinstance(data.get("item"), dict):
            item = data["item"]
            if item.get("type") == "message" and isinstance(rid, str) and isinstance(item.get("id"), str):
                self.item.setdefault(rid, item["id"])
        elif kind == "output_audio_buffer.started" and isinstance(rid, str):
            self.playing = rid
            self.open_audio.add(rid)
        elif kind in ("response.output_audio.done", "response.audio.done"):
            return [], None  # generation ended, not the audio: `end` says when the track has played it
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared") and isinstance(rid, str):
            return [text], (rid, TAIL_S if kind.endswith("stopped") else 0.0)
        elif kind == "response.done" and isinstance(data.get("response"), dict):
            done = data["response"].get("id")
            if done in self.open_audio and data["response"].get("status") == "completed":
                self.held[done] = text
                return [], None
        return [text], None

    def audio(self, pcm24k: bytes) -> p.AudioDelta | None:
        rid = self.playing
        if rid is None or rid not in self.open_audio:
            return None
        return p.AudioDelta(rid, self.item.get(rid, f"item_{rid}"), pcm24k)

    def end(self, rid: str) -> list[Frame]:
        """The response's audio is over: its audio.done, then the held response.done."""
        if rid not in self.open_audio:
            return []
        self.open_audio.discard(rid)
        if self.playing == rid:
            self.playing = None
        out: list[Frame] = [p.AudioDone(rid, self.item.get(rid, f"item_{rid}"))]
        if rid in self.held:
            out.append(self.held.pop(rid))
        return out
