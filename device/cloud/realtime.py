"""The cloud fallback's WebSocket session: one conversation with a realtime speech model.

`RealtimeClient.turn(utterance)` sends one utterance (16 kHz pcm16, pre-roll included), plays the
spoken reply into the `AudioSink` as it arrives, runs the model's tool calls through the
`ToolExecutor`, and returns once the reply has been heard (not merely received) with a
`CloudOutcome`: faults become a prompt id the service speaks locally ("cloud_unreachable"), never
an exception. `interrupt()` is barge-in: the speaker stops
before anything else happens, then the reply is cancelled and truncated to what was heard.
Wire shapes live in `protocol.py`; wall time only through the injected `clock`/`sleep`.

The server is not trusted to end a turn: every turn is bounded by an overall deadline, an
inactivity deadline (only events that carry the turn forward count), a cap on reply audio
(duration and bytes) and on audio queued ahead of the speaker; past any of them the turn ends with
a spoken prompt. A frame that doesn't parse is dropped and logged, never the connection, and the
reader stops reading (flow control) while the turn is behind, so memory stays bounded.
`abort()` ends whatever a turn awaits, at once (service shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import soxr

from device.cloud import protocol as p
from device.cloud.calls import run_tool, tool_output
from device.cloud.connection import PROMPTS, RETRYABLE, backoff_delay, closed_error, open_socket
from device.cloud.playback import ReplyPlayer
from device.cloud.transport import Transport, TransportClosed, WebSocketTransport
from device.errors import CloudError
from device.events import Say, ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolExecutor
from hal.sink import AudioSink

log = logging.getLogger(__name__)

Status = Literal["ok", "interrupted", "empty", "failed"]
APPEND_MS = 100
ROTATE_MARGIN_S = 300.0
HISTORY_ITEMS = 8
PLAYOUT_POLL_S = 0.05
PLAYOUT_STALL_S = 1.0
RATE_CODES = {"inference_rate_limit_exceeded", "rate_limit_exceeded", "insufficient_quota"}
QUEUE_BYTES = 1 << 20
"""Parsed events waiting for the turn, by weight; past this the reader stops reading the socket."""
REMEMBERED_IDS = 256
"""Response and call ids kept per session (a hostile server could mint them without end)."""
MAX_CALLS = 8
"""Function calls run per response; more get an error result each."""
MAX_TOOL_ROUNDS = 8
MAX_RESPONSES = 32
"""Responses one turn may see; a real one needs one per tool round plus one."""
MEDIA_JITTER_MS = 40
"""Reply held before playback over WebRTC, on top of jitter_ms (measured: `voxhome bench cloud
--transport`, 0 gaps at 0 % loss with it, ~50 ms of gap at the end of each reply without)."""
NO_FALLBACK = frozenset({"cloud-turn-timeout", "cloud-reply-too-long", "cloud-overflow", "cloud-disabled"})
"""WebRTC faults the WebSocket can't fix: the turn's own bounds were broken."""


@dataclass(frozen=True, slots=True)
class CloudOutcome:
    status: Status
    prompt: str | None = None
    """Local prompt id to speak (faults, 'cloud_disabled'); None when the cloud answered."""
    code: str | None = None
    reply_text: str = ""
    user_text: str = ""
    played_ms: int = 0
    tool_results: tuple[ToolResult, ...] = ()
    followup_s: float = 0.0
    """Listen this long without the wake word (same session) after a completed reply."""
    first_audio_ms: int | None = None
    """From the start of the turn (connecting included) to the first reply sample at the sink."""
    fell_back: str | None = None
    """The WebRTC fault (a CloudError code) that sent this turn over the WebSocket instead."""

    def say(self) -> Say | None:
        return Say(prompt=self.prompt) if self.prompt else None


@dataclass
class _Closed:
    code: int | None
    reason: str


@dataclass
class _Interrupt:
    pass


QueueItem = p.ServerEvent | _Closed | _Interrupt


def _weight(event: QueueItem) -> int:
    """What an event costs to hold: its audio or text, or a small fixed amount."""
    match event:
        case p.AudioDelta(audio=audio):
            return len(audio) + 64
        case p.TranscriptDelta(delta=text) | p.TextDelta(delta=text):
            return len(text) + 64
    return 256


def _remember(ids: dict[str, Any], key: str, value: Any = None) -> None:
    ids[key] = value
    while len(ids) > REMEMBERED_IDS:
        del ids[next(iter(ids))]


class RealtimeClient:
    """One device's cloud conversation; connects lazily, reconnects with backoff."""

    def __init__(
        self,
        settings: CloudSettings,
        tools: ToolExecutor,
        sink: AudioSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.tools = tools
        self.sink = sink
        self.clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._ws: Transport | None = None
        """The session's transport (WebSocket or WebRTC); None between sessions."""
        self._kind = settings.transport
        """The transport the next session opens: settings.transport, or the WebSocket after a fallback."""
        self._calls_run = 0
        self._reader: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[QueueItem] = asyncio.Queue()
        self._queued_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._active: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._reply = ReplyPlayer(sink, clock, settings.jitter_ms)
        self._interrupted = False
        self._heard_ms = 0
        """Reply heard before this turn's barge-ins replaced the reply player."""
        self._results: dict[str, ToolResult] = {}
        self._known: dict[str, None] = {}
        """Response ids seen in this session (the latest few); a turn ignores those that began before it."""
        self._stale: set[str] = set()
        self._dropped: dict[str, None] = {}
        self._deadline: float | None = None
        """When the turn in progress must end (turn_timeout_s after it began); None between turns."""
        self._reply_ms = 0.0
        self._reply_bytes = 0
        self._turn_task: asyncio.Task[CloudOutcome] | None = None
        self._aborted = False
        self._wall = wall
        self._rotate_at: float | None = None
        self._busy = False
        self._last_activity = clock()
        self._ids = 0
        self._side_tasks = 0
        self._history: list[tuple[Literal["user", "assistant"], str]] = []
        """Text of this conversation's turns, replayed if the session is replaced mid-conversation."""
        self.session_id: str | None = None
        self.sessions = 0

    @property
    def first_sample_at(self) -> float | None:
        """Clock time the current turn's first reply sample went to the sink (benchmarks)."""
        return self._reply.first_sample_at

    async def upstream_bytes(self) -> int:
        """Bytes the session's transport has sent so far (0 without a session), for benchmarks."""
        return await self._ws.sent_bytes() if self._ws is not None else 0

    @property
    def concealed_ms(self) -> int:
        """Reply audio lost on the way and played as silence in this session (WebRTC)."""
        return self._ws.gaps_ms if self._ws is not None else 0

    # ------------------------------------------------------------ connection

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
        self._events, self._queued_bytes = asyncio.Queue(), 0
        self._room.set()
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
                        _remember(self._known, event.response_id)
                    if isinstance(event, p.ResponseCreated) and event.conversation_id is not None:
                        self._active = event.response_id
                        self._idle.clear()
                    elif isinstance(event, p.ResponseDone) and self._active in (event.response_id, None):
                        self._active = None
                        self._idle.set()
                    self._put(event)
                # Flow control: while the turn is behind, stop reading; the socket's buffers and
                # then TCP's window make the server wait, and nothing piles up here.
                await self._room.wait()
            code, reason = None, ""
        except TransportClosed as err:
            code, reason = err.code, err.reason
        if self._ws is ws:
            self._ws = None
        self._active = None
        self._idle.set()
        self._put(_Closed(code, reason))

    def _put(self, event: QueueItem) -> None:
        self._queued_bytes += _weight(event)
        if self._queued_bytes > QUEUE_BYTES:
            self._room.clear()
        self._events.put_nowait(event)

    def _taken(self, event: QueueItem) -> QueueItem:
        self._queued_bytes = max(0, self._queued_bytes - _weight(event))
        if self._queued_bytes <= QUEUE_BYTES // 2:
            self._room.set()
        return event

    async def _get(self) -> QueueItem:
        return self._taken(await self._events.get())

    def _get_nowait(self) -> QueueItem:
        return self._taken(self._events.get_nowait())

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
        while not self._events.empty():
            event = self._get_nowait()
            if isinstance(event, p.ServerError) and event.code == "session_expired":
                return CloudError("cloud-expired", "the cloud session reached its maximum duration")
            if isinstance(event, _Closed):
                return closed_error(event.code)
        return CloudError("cloud-dropped", "the cloud connection closed while sending")

    async def _next(self, wait_s: float) -> p.ServerEvent | _Interrupt:
        turn_left = math.inf if self._deadline is None else self._deadline - self.clock()
        try:
            event = await asyncio.wait_for(self._get(), max(0.0, min(wait_s, turn_left)))
        except TimeoutError:
            if turn_left <= wait_s:
                raise self._late() from None
            raise CloudError("cloud-timeout", f"the cloud was silent for {wait_s:g} s") from None
        if isinstance(event, _Closed):
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

    # ------------------------------------------------------------ turns

    async def turn(self, utterance: bytes) -> CloudOutcome:
        """Send one utterance and play the reply; always returns, within bounded time."""
        if not self.settings.enabled:
            return CloudOutcome("failed", prompt="cloud_disabled", code="cloud-disabled")
        return await self._abortable(self._turn(utterance))

    async def _turn(self, utterance: bytes) -> CloudOutcome:
        self._begin_turn()
        started = self.clock()
        try:
            if self._ws is not None and self._rotate_at is not None and self.clock() >= self._rotate_at:
                # Rotate while idle rather than hit session_expired mid-reply.
                log.info("cloud session %s near its maximum duration; opening a new one", self.session_id)
                await self.close()
            await self.connect()
            outcome = await self._audio_turn(utterance)
        except CloudError as err:
            if self._kind == "webrtc" and err.code not in NO_FALLBACK and not self._heard_anything():
                outcome = await self._fall_back(utterance, err)
            else:
                outcome = await self._fail(err)
        self._touch()
        first = self._reply.first_sample_at
        if first is not None and first >= started:
            outcome = dataclasses.replace(outcome, first_audio_ms=round((first - started) * 1000))
        return outcome

    def _player(self) -> ReplyPlayer:
        # Over WebRTC the reply comes in real time, through aiortc's 4-frame receive buffer and two
        # resamplers: hold a little more of it, or the speaker runs dry before its last frames.
        extra = MEDIA_JITTER_MS if self._kind == "webrtc" else 0
        return ReplyPlayer(self.sink, self.clock, self.settings.jitter_ms + extra)

    def _heard_anything(self) -> bool:
        """Whether this turn already played reply audio or ran a tool (a retry would repeat them)."""
        return self._reply.started or self._heard_ms > 0 or self._calls_run > 0

    async def _fall_back(self, utterance: bytes, cause: CloudError) -> CloudOutcome:
        """WebRTC could not carry the turn: the same request over the WebSocket, once."""
        log.warning("cloud over WebRTC failed: %s (%s); this turn goes over the WebSocket",
                    cause.message, cause.code, extra={"code": cause.code})
        await self.close()
        self._kind = "websocket"
        self._reply = self._player()
        try:
            await self.connect()
            outcome = await self._audio_turn(utterance)
        except CloudError as err:
            outcome = await self._fail(err)
        return dataclasses.replace(outcome, fell_back=cause.code)

    async def text_turn(self, text: str) -> CloudOutcome:
        """A typed or locally transcribed request answered in text (no audio)."""
        if not self.settings.enabled:
            return CloudOutcome("failed", prompt="cloud_disabled", code="cloud-disabled")
        return await self._abortable(self._text_turn(text))

    async def _text_turn(self, text: str) -> CloudOutcome:
        self._begin_turn()
        try:
            await self.connect()
            await self._send(p.UserText(text))
            await self._wait_idle()
            await self._send(p.ResponseCreate(text_only=True))
            outcome = await self._responses(text_only=True)
        except CloudError as err:
            outcome = await self._fail(err)
        self._touch()
        return outcome

    async def _abortable(self, body: Coroutine[Any, Any, CloudOutcome]) -> CloudOutcome:
        """Run a turn as its own task, so that `abort()` ends it wherever it waits."""
        if self._aborted:
            body.close()
            return CloudOutcome("failed", code="cloud-shutdown")
        task = self._turn_task = asyncio.create_task(body)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled, not only this turn
            # Shutting down: nothing to say (the service is stopping), only what was heard.
            return CloudOutcome("failed", code="cloud-shutdown", played_ms=self._heard_ms)
        finally:
            self._turn_task = None

    def abort(self) -> None:
        """Shutdown: silence the reply and end the turn in progress now; later turns refuse.

        Synchronous, so a signal handler can call it; `close()` then ends the session.
        """
        self._aborted = True
        self._heard_ms += self._reply.stop().played_ms
        self._reply = self._player()
        if self._turn_task is not None and not self._turn_task.done():
            log.info("cloud turn aborted (shutdown)")
            self._turn_task.cancel()

    async def side_task(self, text: str, instructions: str, purpose: str) -> str:
        """Out-of-band text answer about `text` that stays out of the conversation's history.

        Raises CloudError; the caller decides what a failed side task means.
        """
        if not self.settings.enabled:
            raise CloudError("cloud-disabled", "the cloud is disabled in the settings")
        self._deadline = self.clock() + self.settings.turn_timeout_s
        try:
            return await self._side_task(text, instructions, purpose)
        finally:
            self._deadline = None

    async def _side_task(self, text: str, instructions: str, purpose: str) -> str:
        await self.connect()
        await self._send(p.UserText(text))
        item = await self._expect(p.ItemAdded, self.settings.response_timeout_s)
        self._side_tasks += 1
        request = f"oob-{self._side_tasks}"
        await self._send(p.OutOfBandResponse(instructions, (item.item.id,), {"purpose": purpose, "request": request}))
        rid: str | None = None
        out: list[str] = []
        while True:
            event = await self._next(self.settings.response_timeout_s)
            match event:
                case p.ResponseCreated(response_id=created, metadata=meta) if (meta or {}).get("request") == request:
                    rid = created
                case p.TextDelta(response_id=r, delta=delta) if r == rid:
                    out.append(delta)
                case p.ResponseDone(response_id=r, status=status) if r == rid:
                    if status != "completed":
                        raise CloudError("cloud-response-failed", f"side task ended {status}")
                    self._touch()
                    return "".join(out)

    def _begin_turn(self) -> None:
        self._busy = True
        self._last_activity = self.clock()
        self._interrupted = False
        self._reply = self._player()
        self._heard_ms = 0
        self._deadline = self.clock() + self.settings.turn_timeout_s
        self._reply_ms, self._reply_bytes = 0.0, 0
        self._calls_run = 0
        self._stale = set(self._known)
        while not self._events.empty():  # stale events of an earlier, finished turn
            event = self._get_nowait()
            if isinstance(event, _Closed):
                self._ws = None

    async def _audio_turn(self, utterance: bytes) -> CloudOutcome:
        audio = upsample(utterance)
        client_vad = self.settings.turn_detection == "client"
        if client_vad and len(audio) < APPEND_MS * p.BYTES_PER_MS:
            # The API rejects commits under 100 ms; that much audio isn't a request anyway.
            return CloudOutcome("empty")
        if client_vad:
            await self._send(p.AudioClear())
        if self._ws is not None and self._ws.media:
            try:
                await self._ws.send_audio(utterance)  # paced on the Opus track, no appends
            except TransportClosed:
                raise await self._why_closed() from None
        else:
            step = APPEND_MS * p.BYTES_PER_MS
            for start in range(0, len(audio), step):
                await self._send(p.AudioAppend(audio[start:start + step]))
        if client_vad:
            await self._send(p.AudioCommit())
            await self._wait_idle()
            await self._send(p.ResponseCreate())
        return await self._responses()

    async def _wait_idle(self) -> None:
        # Never response.create while a response is active (a tool race or a VAD auto-response).
        try:
            await asyncio.wait_for(self._idle.wait(), self.settings.response_timeout_s)
        except TimeoutError:
            raise CloudError("cloud-timeout", "the previous cloud response never finished") from None

    async def _responses(self, *, text_only: bool = False) -> CloudOutcome:
        """Consume responses until one completes without tool calls (or the turn fails)."""
        reply_text: list[str] = []
        user_text = ""
        results: list[ToolResult] = []
        mine: set[str] = set()
        names: dict[str, str] = {}
        calls: list[p.FunctionArgumentsDone] = []
        rounds = 0
        progress_at = self.clock()
        while True:
            # Inactivity: only events that carry this turn forward reset the clock, so a stream
            # of unrelated or unknown events can't hold the turn open (the overall deadline can't
            # be reset at all).
            event = await self._next(progress_at + self.settings.response_timeout_s - self.clock())
            if isinstance(event, _Interrupt) or self._interrupted:
                return self._outcome("interrupted", reply_text, user_text, results)
            if _moves_turn(event, mine):
                progress_at = self.clock()
            match event:
                case p.ResponseCreated(response_id=rid, conversation_id=conv) if conv is not None:
                    mine.add(rid)
                    progress_at = self.clock()
                    if len(mine) > MAX_RESPONSES:
                        raise CloudError("cloud-response-failed", f"over {MAX_RESPONSES} responses in one turn")
                case p.OutputItemAdded(response_id=rid, item=item) if rid in mine and item.type == "function_call":
                    if item.call_id and item.name:
                        _remember(names, item.call_id, item.name)
                case p.FunctionArgumentsDone(response_id=rid) if rid in mine:
                    if len(calls) >= 4 * MAX_CALLS:
                        raise CloudError("cloud-response-failed", f"over {4 * MAX_CALLS} function calls in one response")
                    calls.append(event)
                case p.AudioDelta(response_id=rid, item_id=item_id, audio=audio):
                    self._count_audio(len(audio), counts=rid in mine and rid not in self._dropped)
                    if rid in mine and rid not in self._dropped:
                        self._reply.delta(rid, item_id, audio)
                        if self._reply.unplayed_ms > self.settings.max_buffered_s * 1000:
                            await self._catch_up()
                            progress_at = self.clock()  # our own wait, not the server's silence
                case p.AudioDone(response_id=rid, item_id=item_id) if rid in mine:
                    self._reply.finish_item(item_id)
                case p.TranscriptDelta(response_id=rid, delta=delta) | p.TextDelta(response_id=rid, delta=delta) if rid in mine:
                    reply_text.append(delta)
                case p.InputTranscript(transcript=text):
                    user_text = text
                case p.SpeechStarted() if self._reply.started:
                    await self._barge_in(server_cancels=True)
                case p.ServerError(code=code, type=etype):
                    if code in ("response_cancel_not_active", "conversation_already_has_active_response"):
                        log.debug("cloud: benign race %s", code)
                    elif code == "input_audio_buffer_commit_empty":
                        return CloudOutcome("empty")
                    else:
                        log.warning("cloud error event: %s %s", etype, code)
                case p.ResponseDone(response_id=rid, status=status, error_code=err) if rid in mine or (
                    not mine and rid not in self._stale
                ):
                    self._reply.flush()
                    if status == "failed":
                        code = "cloud-rate-limited" if err in RATE_CODES else "cloud-response-failed"
                        raise CloudError(code, f"the cloud response failed ({err})")
                    if status == "cancelled":
                        if self.settings.turn_detection == "client":
                            return self._outcome("interrupted", reply_text, user_text, results)
                        continue
                    if calls:
                        rounds += 1
                        if rounds > MAX_TOOL_ROUNDS:
                            raise CloudError("cloud-response-failed", f"over {MAX_TOOL_ROUNDS} tool rounds in one turn")
                        results.extend(await self._run_calls(calls, names))
                        calls = []
                        await self._wait_idle()
                        await self._send(p.ResponseCreate(text_only=text_only))
                        continue
                    self._reply.end()
                    ended = await self._play_out()
                    if ended == "speech":
                        continue  # server VAD: the user talked over the tail; their request is answered next
                    return self._outcome("ok" if ended == "played" else "interrupted", reply_text, user_text, results)

    def _count_audio(self, size: int, *, counts: bool) -> None:
        """The reply caps: bytes whatever response they claim, duration of what would be played."""
        self._reply_bytes += size
        if counts:
            self._reply_ms += size / p.BYTES_PER_MS
        if self._reply_bytes > self.settings.max_reply_bytes:
            raise CloudError("cloud-reply-too-long", f"over {self.settings.max_reply_bytes} bytes of reply audio")
        if self._reply_ms > self.settings.max_reply_s * 1000:
            raise CloudError("cloud-reply-too-long", f"over {self.settings.max_reply_s:g} s of reply audio")

    async def _catch_up(self) -> None:
        """The reply is far ahead of the speaker: take no more until half of it has been heard.

        Not reading is the point: the reader's queue fills, the reader stops reading, and the
        transport's flow control holds the server back, so memory stays bounded.
        """
        loop = asyncio.get_running_loop()
        limit = self.settings.max_buffered_s * 500
        heard, progress_at = -1, loop.time()
        while self._reply.unplayed_ms > limit and not self._interrupted:
            if self._deadline is not None and self.clock() >= self._deadline:
                raise self._late()
            if self._reply.played_ms != heard:
                heard, progress_at = self._reply.played_ms, loop.time()
            elif loop.time() - progress_at > PLAYOUT_STALL_S:
                raise CloudError("cloud-overflow", f"the speaker stopped with {self._reply.unplayed_ms} ms of reply queued")
            await asyncio.sleep(PLAYOUT_POLL_S)

    async def _play_out(self) -> Literal["played", "interrupted", "speech"]:
        """Hold the turn open while the reply's tail plays.

        The reply arrives faster than it is spoken, so `response.done` comes seconds before the
        device falls silent. Until then a wake word must still barge in (and truncate the item on
        the server), the outcome must say what was actually heard, and the follow-up window must not
        start ticking. A speaker that stops advancing ends the wait rather than the turn.
        """
        loop = asyncio.get_running_loop()
        heard, progress_at = -1, loop.time()
        while (left := self._reply.unplayed_ms) > 0 and not self._interrupted:
            if self._deadline is not None and self.clock() >= self._deadline:
                raise self._late()
            if self._reply.played_ms != heard:
                heard, progress_at = self._reply.played_ms, loop.time()
            elif loop.time() - progress_at > PLAYOUT_STALL_S:
                log.warning("the speaker stalled %d ms before the end of the cloud reply", left)
                break
            try:
                event = await asyncio.wait_for(self._get(), min(left / 1000, PLAYOUT_POLL_S))
            except TimeoutError:
                continue
            match event:
                case _Interrupt():
                    return "interrupted"
                case _Closed():
                    self._ws = None  # the reply arrived whole; only the next turn needs a new socket
                case p.SpeechStarted():
                    await self._barge_in(server_cancels=True)
                    return "speech"
        return "interrupted" if self._interrupted else "played"

    def _outcome(self, status: Status, text: list[str], user: str, results: list[ToolResult]) -> CloudOutcome:
        played = self._heard_ms + self._reply.played_ms
        if status == "ok":
            if user:
                self._history.append(("user", user))
            if text:
                self._history.append(("assistant", "".join(text)))
            del self._history[:-HISTORY_ITEMS]
        return CloudOutcome(status, reply_text="".join(text), user_text=user, played_ms=played,
                            tool_results=tuple(results),
                            followup_s=self.settings.followup_s if status == "ok" else 0.0)

    async def _fail(self, err: CloudError) -> CloudOutcome:
        log.warning("cloud turn failed: %s (%s)", err.message, err.code, extra={"code": err.code})
        self._reply.discard()
        if err.code == "cloud-reply-too-long":
            # Play what was received up to the cap (bounded by max_buffered_s), then say why it stopped.
            if self._ws is not None and self._active is not None:
                with contextlib.suppress(CloudError):
                    await self._send(p.ResponseCancel(self._active))
            self._reply.end()
            with contextlib.suppress(CloudError):
                await self._play_out()
        if err.code in ("cloud-turn-timeout", "cloud-overflow", "cloud-reply-too-long"):
            self._heard_ms += self._reply.stop().played_ms  # past a bound nothing more plays
            self._reply = self._player()
            await self.close()  # a server that broke a bound isn't trusted with the next turn
        if err.code == "cloud-timeout" and self._ws is not None and self._active is not None:
            with contextlib.suppress(CloudError):
                await self._send(p.ResponseCancel(self._active))
        if err.code not in ("cloud-response-failed", "cloud-rate-limited") or self._ws is None:
            # After a silent server, a drop or an expiry the session can't be trusted: start fresh.
            await self.close()
        return CloudOutcome("failed", prompt=PROMPTS.get(err.code, "cloud_error"), code=err.code, played_ms=self._heard_ms)

    async def _run_calls(self, calls: list[p.FunctionArgumentsDone], names: dict[str, str]) -> list[ToolResult]:
        """Each call is validated and run alone: a bad one gets its own error, its siblings run."""
        results = []
        for index, call in enumerate(calls):
            name = call.name or names.get(call.call_id, "")
            result = self._results.get(call.call_id)
            if result is None:  # each call_id runs at most once (duplicated events, re-sends)
                if index >= MAX_CALLS:
                    result = ToolResult(call.call_id, name[:80], "error", {}, f"at most {MAX_CALLS} calls per response")
                else:
                    self._calls_run += 1
                    result = await run_tool(self.tools, call.call_id, name, call.arguments,
                                            timeout_s=self.settings.tool_timeout_s)
                _remember(self._results, call.call_id, result)
            results.append(result)
            try:
                output = tool_output(result)
            except (TypeError, ValueError, RecursionError):
                output = '{"ok":false,"error":"the result could not be encoded"}'
            await self._send(p.FunctionCallOutput(call.call_id, output))
        return results

    # ------------------------------------------------------------ barge-in, idle

    async def interrupt(self, reason: str = "wake") -> int:
        """Barge-in: silence now, then cancel and truncate; returns the ms the user heard."""
        return await self._barge_in(server_cancels=False, reason=reason)

    async def _barge_in(self, *, server_cancels: bool, reason: str = "speech") -> int:
        heard = self._reply.stop()  # silence first, before any await: latency beats protocol order
        self._reply = self._player()
        self._heard_ms += heard.played_ms
        # Late deltas of what was playing are dropped by response id (they race the cancel).
        for rid in heard.response_ids:
            _remember(self._dropped, rid)
        if self._active is not None:
            _remember(self._dropped, self._active)
        log.info("cloud reply interrupted (%s) after %d ms", reason, heard.played_ms)
        if not server_cancels:
            self._interrupted = True  # the turn ends here; with server VAD the next reply follows
            self._events.put_nowait(_Interrupt())
        if self._ws is None:
            return heard.played_ms
        try:
            if not server_cancels and self._active is not None:
                await self._send(p.ResponseCancel(self._active))
            if not server_cancels and self._ws is not None and self._ws.media:
                await self._send(p.OutputAudioClear())  # WebRTC: the server's play-out buffer too
            if heard.item_id is not None and heard.audio_end_ms > 0:
                # Truncating at 0 ms is an error, and nothing was heard anyway.
                await self._send(p.ItemTruncate(heard.item_id, heard.audio_end_ms))
            if not server_cancels and self.settings.turn_detection == "client":
                await self._send(p.AudioClear())
        except CloudError as err:
            log.info("cloud barge-in not sent: %s", err.message)
        return heard.played_ms

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


def _moves_turn(event: QueueItem, mine: set[str]) -> bool:
    """Whether an event is progress on this turn (for the inactivity deadline)."""
    if isinstance(event, p.InputTranscript | p.SpeechStarted | p.SpeechStopped | p.Committed):
        return True
    return getattr(event, "response_id", None) in mine


def upsample(pcm16k: bytes) -> bytes:
    """16 kHz → 24 kHz pcm16 with soxr (the API takes 24 kHz PCM only)."""
    samples = np.frombuffer(pcm16k, dtype="<i2")
    if len(samples) == 0:
        return b""
    return np.asarray(soxr.resample(samples, 16000, p.PCM_RATE, quality="HQ"), dtype="<i2").tobytes()
