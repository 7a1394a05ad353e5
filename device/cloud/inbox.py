"""The session's inbox: typed server events waiting for the turn, bounded by weight.

The reader task puts every event here; past `QUEUE_BYTES` it stops reading the transport (`room`
clears), so a server that sends faster than the turn consumes is held back by the transport's own
flow control, and memory stays bounded. `Closed` (the transport ended) and `Interrupt` (barge-in)
travel in the same queue, so a turn waiting for events wakes for them too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from device.cloud import protocol as p

QUEUE_BYTES = 1 << 20
"""Parsed events waiting for the turn, by weight; past this the reader stops reading the socket."""
REMEMBERED_IDS = 256
"""Response and call ids kept per session (a hostile server could mint them without end)."""


@dataclass
class Closed:
    code: int | None
    reason: str


@dataclass
class Interrupt:
    pass


QueueItem = p.ServerEvent | Closed | Interrupt


def weight(event: QueueItem) -> int:
    """What an event costs to hold: its audio or text, or a small fixed amount."""
    match event:
        case p.AudioDelta(audio=audio):
            return len(audio) + 64
        case p.TranscriptDelta(delta=text) | p.TextDelta(delta=text):
            return len(text) + 64
    return 256


def remember(ids: dict[str, Any], key: str, value: Any = None) -> None:
    """Keep `key` among the latest REMEMBERED_IDS (oldest forgotten first)."""
    ids[key] = value
    while len(ids) > REMEMBERED_IDS:
        del ids[next(iter(ids))]


class Inbox:
    """A FIFO of events that tracks what it holds; `room` is set while the reader may read on."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self.queued_bytes = 0
        self.room = asyncio.Event()
        self.room.set()

    def put(self, event: QueueItem) -> None:
        self.queued_bytes += weight(event)
        if self.queued_bytes > QUEUE_BYTES:
            self.room.clear()
        self._queue.put_nowait(event)

    def _taken(self, event: QueueItem) -> QueueItem:
        self.queued_bytes = max(0, self.queued_bytes - weight(event))
        if self.queued_bytes <= QUEUE_BYTES // 2:
            self.room.set()
        return event

    async def get(self) -> QueueItem:
        return self._taken(await self._queue.get())

    def get_nowait(self) -> QueueItem:
        return self._taken(self._queue.get_nowait())

    def empty(self) -> bool:
        return self._queue.empty()
