"""One realtime session: the transport, its reader task, sending, and the session's lifetime.

`RealtimeSession` opens the configured transport (WebSocket, or WebRTC with aiortc loaded only
then), sends `session.update` and waits for `session.updated`, replays the conversation so far as
text (a new session remembers nothing), and rotates before the server's `expires_at`. Its reader
task types every frame (`protocol.py`) into the `Inbox` and keeps the active response current
between turns; a frame that doesn't parse is dropped and logged, never the connection. After
`idle_close_s` without a turn the session closes (cost and server limits). Turn logic lives in
`turn.py` on top of this; wall time only through the injected `clock`/`sleep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from device.cloud import protocol as p
from device.cloud.connection import RETRYABLE, backoff_delay, closed_error, open_socket
from device.cloud.inbox import Closed, Inbox, Interrupt, remember
from device.cloud.transport import Transport, TransportClosed, WebSocketTransport
from device.errors import CloudError
from device.events import ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolExecutor

log = logging.getLogger(__name__)

ROTATE_MARGIN_S = 300.0
"""A session this close to its expiry is replaced between turns rather than expire mid-reply."""


class RealtimeSession:
    """The connection half of the client: connects lazily, reconnects with backoff."""

    def __init__(
        self,
        settings: CloudSettings,
        tools: ToolExecutor,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.tools = tools
        self.clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._wall = wall
        self._ws: Transport | None = None
        """The session's transport (WebSocket or WebRTC); None between sessions."""
        self._kind = settings.transport
        """The transport the next session opens: settings.transport, or the WebSocket after a fallback."""
        self._reader: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._inbox = Inbox()
        self._active: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._results: dict[str, ToolResult] = {}
        self._known: dict[str, None] = {}
        """Response ids seen in this session (the latest few); a turn ignores those that began before it."""
        self._dropped: dict[str, None] = {}
        self._deadline: float | None = None
        """When the turn in progress must end (turn_timeout_s after it began); None between turns."""
        self._rotate_at: float | None = None
        self._busy = False
        self._last_activity = clock()
        self._ids = 0
        self._history: list[tuple[Literal["user", "assistant"], str]] = []
        """Text of this conversation's turns, replayed if the session is replaced mid-conversation."""
        self.session_id: str | None = None
        self.sessions = 0

    async def upstream_bytes(self) -> int:
        """Bytes the session's transport has sent so far (0 without a session), for benchmarks."""
        return await self._ws.sent_bytes() if self._ws is not None else 0

    @property
    def concealed_ms(self) -> int:
        """Reply audio lost on the way and played as silence in this session (WebRTC)."""
        return self._ws.gaps_ms if self._ws is not None else 0

    async def connect(self) -> None:
        """Open a session (with retries); raises CloudError with a stable code."""
        if self._ws is not None:
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._open()
                return
            except CloudError as err:
                # WebRTC isn't retried: the turn falls back to the WebSocket (with its retries).
                if err.code not in RETRYABLE or attempt > self.settings.retries or self._kind == "webrtc":
                    raise
                delay = backoff_delay(attempt, self._rng)
                log.info("cloud connect failed (%s); retry %d in %.2f s", err.code, attempt, delay)
                await self._sleep(delay)

    async def _open(self) -> None:
        timeout = self.settings.connect_timeout_s
        ws = await self._open_transport()
        self._ws = ws
        self._inbox = Inbox()
        self._active, self._results, self._known, self._dropped = None, {}, {}, {}
        self._idle.set()
        self._reader = asyncio.create_task(self._read(ws))
        try:
            created = await self._expect(p.SessionCreated, timeout)
            if created.shape != self.settings.dialect:
                log.warning("cloud session looks %s but %s is configured", created.shape, self.settings.dialect)
            update_id = await self._send(p.SessionUpdate(self._session_config()))
            while True:
                event = await self._next(timeout)
                if isinstance(event, p.SessionUpdated):
                    break
                if isinstance(event, p.ServerError) and event.client_event_id in (update_id, None):
                    raise CloudError("cloud-session-rejected", f"session.update rejected: {event.code}")
            # A new session remembers nothing: replay the conversation so far as text.
            for role, text in self._history:
                await self._send(p.HistoryText(role, text))
        except CloudError:
            await self.close()
            raise
        self.session_id, self.sessions = created.session_id, self.sessions + 1
        lifetime = (created.expires_at - self._wall()) if created.expires_at else None
        # expires_at is server wall time; a value already past means a skewed clock, so ignore it.
        self._rotate_at = self.clock() + lifetime - ROTATE_MARGIN_S if lifetime and lifetime > ROTATE_MARGIN_S else None
        log.info("cloud session %s open (%s, %s)", created.session_id, self.settings.dialect, ws.name)

    async def _open_transport(self) -> Transport:
        if self._kind == "webrtc":
            from device.cloud.webrtc import open_webrtc  # aiortc loads only when WebRTC is used

            return await open_webrtc(self.settings)
        return WebSocketTransport(await open_socket(self.settings))

    def _session_config(self) -> p.SessionConfig:
        s = self.settings
        return p.SessionConfig(
            instructions=s.instructions, voice=s.voice, speed=s.speed, language=s.language or None,
            turn_detection=s.turn_detection, tools=tuple(t.to_realtime() for t in self.tools.specs()),
        )

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        self._kind = self.settings.transport  # a fallback lasts as long as its session
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _read(self, ws: Transport) -> None:
        """Reader task: frames → typed events; keeps response tracking current between turns."""
        try:
            async for message in ws.frames():
                if not isinstance(message, str | bytes):
                    events: list[p.ServerEvent] = [message]  # decoded media: already an event
                else:
                    try:
                        events = p.parse_server_event(message, self.settings.dialect, self.settings.max_frame_bytes)
                    except CloudError as err:
                        log.warning("%s", err.message)
                        continue
                    except Exception:  # noqa: BLE001 - a frame the parser missed loses that frame only
                        log.exception("dropped a cloud frame the parser could not type")
                        continue
                for event in events:
                    if isinstance(event, p.ResponseCreated):
                        remember(self._known, event.response_id)
                    if isinstance(event, p.ResponseCreated) and event.conversation_id is not None:
                        self._active = event.response_id
                        self._idle.clear()
                    elif isinstance(event, p.ResponseDone) and self._active in (event.response_id, None):
                        self._active = None
                        self._idle.set()
                    self._inbox.put(event)
                # Flow control: while the turn is behind, stop reading; the socket's buffers and
                # then TCP's window make the server wait, and nothing piles up here.
                await self._inbox.room.wait()
            code, reason = None, ""
        except TransportClosed as err:
            code, reason = err.code, err.reason
        if self._ws is ws:
            self._ws = None
        self._active = None
        self._idle.set()
        self._inbox.put(Closed(code, reason))

    async def _send(self, event: p.ClientEvent) -> str | None:
        if self._ws is None:
            raise CloudError("cloud-dropped", "the cloud connection is closed")
        event_id = None
        if not isinstance(event, p.AudioAppend):
            self._ids += 1
            event_id = f"vox_{self._ids}"
        try:
            await self._ws.send(json.dumps(p.client_to_wire(event, self.settings.dialect, event_id)))
        except TransportClosed:
            raise await self._why_closed() from None
        return event_id

    async def _why_closed(self) -> CloudError:
        """The connection closed under a send: let the reader finish, then report why it closed."""
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
        while not self._inbox.empty():
            event = self._inbox.get_nowait()
            if isinstance(event, p.ServerError) and event.code == "session_expired":
                return CloudError("cloud-expired", "the cloud session reached its maximum duration")
            if isinstance(event, Closed):
                return closed_error(event.code)
        return CloudError("cloud-dropped", "the cloud connection closed while sending")

    async def _next(self, wait_s: float) -> p.ServerEvent | Interrupt:
        turn_left = math.inf if self._deadline is None else self._deadline - self.clock()
        try:
            event = await asyncio.wait_for(self._inbox.get(), max(0.0, min(wait_s, turn_left)))
        except TimeoutError:
            if turn_left <= wait_s:
                raise self._late() from None
            raise CloudError("cloud-timeout", f"the cloud was silent for {wait_s:g} s") from None
        if isinstance(event, Closed):
            raise closed_error(event.code)
        if isinstance(event, p.ServerError) and event.code == "session_expired":
            raise CloudError("cloud-expired", "the cloud session reached its maximum duration")
        return event

    def _late(self) -> CloudError:
        return CloudError("cloud-turn-timeout", f"the cloud turn took longer than {self.settings.turn_timeout_s:g} s")

    async def _expect(self, kind: type[Any], wait_s: float) -> Any:
        while True:
            event = await self._next(wait_s)
            if isinstance(event, kind):
                return event

    async def _wait_idle(self) -> None:
        # Never response.create while a response is active (a tool race or a VAD auto-response).
        try:
            await asyncio.wait_for(self._idle.wait(), self.settings.response_timeout_s)
        except TimeoutError:
            raise CloudError("cloud-timeout", "the previous cloud response never finished") from None

    def _touch(self) -> None:
        self._busy = False
        self._deadline = None
        self._last_activity = self.clock()
        if self._ws is not None and (self._idle_task is None or self._idle_task.done()):
            self._idle_task = asyncio.create_task(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        """Close the session after `idle_close_s` without a turn (cost and server limits)."""
        while self._ws is not None:
            left = self._last_activity + self.settings.idle_close_s - self.clock()
            if self._busy:
                left = self.settings.idle_close_s
            elif left <= 0:
                log.info("cloud session idle for %.0f s; closing", self.settings.idle_close_s)
                self._history.clear()  # the conversation is over; the next wake word starts afresh
                await self.close()
                return
            await self._sleep(left)
