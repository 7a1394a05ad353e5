"""The fake server's network: loss, jitter and round trip, for either transport.

`Impairment` says what the link does; `DelayLine` applies it to one direction of messages. Over
WebRTC the audio's loss and jitter are on the RTP track (`fake_webrtc.ImpairedTrack`); messages
only get half the RTT. Over the WebSocket (TCP) nothing is lost: a lost segment is resent after
about one RTT (fast retransmit) and holds back everything behind it (head-of-line blocking) —
a model of TCP, not TCP itself, so both transports are measured under the same numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Impairment:
    """The fake's link: what happens to its reply audio and its messages."""

    loss: float = 0.0
    """Fraction of reply RTP frames never sent (WebRTC) or of frames resent late (WebSocket)."""
    jitter_ms: float = 0.0
    """Each reply RTP frame leaves up to this much late (uniform)."""
    rtt_ms: float = 0.0
    """Round trip: half on each message each way, and on the start of the reply audio."""
    seed: int = 1

    @property
    def any(self) -> bool:
        return self.loss > 0 or self.jitter_ms > 0 or self.rtt_ms > 0


class DelayLine:
    """Messages leave in order, each `rtt/2` after it was given (plus a resend's RTT if 'lost')."""

    def __init__(self, send: Callable[[Any], Awaitable[None]], impairment: Impairment, *, lossy: bool) -> None:
        self._send = send
        self._delay = impairment.rtt_ms / 2000
        self._resend = impairment.rtt_ms / 1000
        self._loss = impairment.loss if lossy else 0.0
        self._rng = random.Random(impairment.seed)
        self._last_due = 0.0
        self._queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._pump())

    def put(self, message: Any) -> None:
        due = time.monotonic() + self._delay
        if self._loss and self._rng.random() < self._loss:
            due += self._resend
        self._last_due = due = max(due, self._last_due)  # in order: nothing overtakes a resend
        self._queue.put_nowait((due, message))

    async def _pump(self) -> None:
        while True:
            due, message = await self._queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            with contextlib.suppress(Exception):  # the far end went away; the session notices
                await self._send(message)

    def stop(self) -> None:
        self._task.cancel()


class ImpairedSocket:
    """The fake's WebSocket behind a `DelayLine` each way; shaped like the socket for `_Conn`."""

    def __init__(self, ws: Any, impairment: Impairment) -> None:
        self.ws = ws
        self.transport = ws.transport
        self.request = ws.request
        self._out = DelayLine(ws.send, impairment, lossy=True)

    async def send(self, message: str | bytes) -> None:
        self._out.put(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._out.stop()
        await self.ws.close(code, reason)

    def stop(self) -> None:
        self._out.stop()
