"""The cloud fallback's WebSocket session: one conversation with a realtime speech model.

`RealtimeClient.turn(utterance)` sends one utterance (16 kHz pcm16, pre-roll included), plays the
spoken reply into the `AudioSink` as it arrives, runs the model's tool calls through the
`ToolExecutor`, and returns once the reply has been heard (not merely received) with a
`CloudOutcome`: faults become a prompt id the service speaks locally ("cloud_unreachable"), never
an exception. `interrupt()` is barge-in: the speaker stops
before anything else happens, then the reply is cancelled and truncated to what was heard.
Wire shapes live in `protocol.py`; wall time only through the injected `clock`/`sleep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import soxr
import websockets
from websockets.asyncio.client import ClientConnection

from device.cloud import protocol as p
from device.cloud.calls import run_tool, tool_output
from device.cloud.connection import PROMPTS, RETRYABLE, backoff_delay, closed_error, open_socket
from device.cloud.playback import ReplyPlayer
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

    def say(self) -> Say | None:
        return Say(prompt=self.prompt) if self.prompt else None


@dataclass
class _Closed:
    code: int | None
    reason: str


@dataclass
class _Interrupt:
    pass


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
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[p.ServerEvent | _Closed | _Interrupt] = asyncio.Queue()
        self._active: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._reply = ReplyPlayer(sink, clock, settings.jitter_ms)
        self._interrupted = False
        self._heard_ms = 0
        """Reply heard before this turn's barge-ins replaced the reply player."""
        self._results: dict[str, ToolResult] = {}
        self._known: set[str] = set()
        """Response ids seen in this session; a turn ignores those that began before it."""
        self._stale: set[str] = set()
        self._dropped: set[str] = set()
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
                if err.code not in RETRYABLE or attempt > self.settings.retries:
                    raise
                delay = backoff_delay(attempt, self._rng)
                log.info("cloud connect failed (%s); retry %d in %.2f s", err.code, attempt, delay)
                await self._sleep(delay)

    async def _open(self) -> None:
        timeout = self.settings.connect_timeout_s
        ws = await open_socket(self.settings)
        self._ws = ws
        self._events = asyncio.Queue()
        self._active, self._results, self._known, self._dropped = None, {}, set(), set()
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
        log.info("cloud session %s open (%s)", created.session_id, self.settings.dialect)

    def _session_config(self) -> p.SessionConfig:
        s = self.settings
        return p.SessionConfig(
            instructions=s.instructions, voice=s.voice, speed=s.speed, language=s.language or None,
            turn_detection=s.turn_detection, tools=tuple(t.to_realtime() for t in self.tools.specs()),
        )

    async def close(self) -> None:
        ws, self._ws = self._ws, None
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

    async def _read(self, ws: ClientConnection) -> None:
        """Reader task: frames → typed events; keeps response tracking current between turns."""
        try:
            async for message in ws:
                try:
                    events = p.parse_server_event(message, self.settings.dialect)
                except CloudError as err:
                    log.warning("%s", err.message)
                    continue
                for event in events:
                    if isinstance(event, p.ResponseCreated):
                        self._known.add(event.response_id)
                    if isinstance(event, p.ResponseCreated) and event.conversation_id is not None:
                        self._active = event.response_id
                        self._idle.clear()
                    elif isinstance(event, p.ResponseDone) and self._active in (event.response_id, None):
                        self._active = None
                        self._idle.set()
                    self._events.put_nowait(event)
            code, reason = ws.close_code, ws.close_reason or ""
        except websockets.ConnectionClosed as err:
            code, reason = (err.rcvd.code, err.rcvd.reason) if err.rcvd else (None, "")
        if self._ws is ws:
            self._ws = None
        self._active = None
        self._idle.set()
        self._events.put_nowait(_Closed(code, reason))

    async def _send(self, event: p.ClientEvent) -> str | None:
        if self._ws is None:
            raise CloudError("cloud-dropped", "the cloud connection is closed")
        event_id = None
        if not isinstance(event, p.AudioAppend):
            self._ids += 1
            event_id = f"vox_{self._ids}"
        try:
            await self._ws.send(json.dumps(p.client_to_wire(event, self.settings.dialect, event_id)))
        except websockets.ConnectionClosed:
            raise await self._why_closed() from None
        return event_id

    async def _why_closed(self) -> CloudError:
        """The connection closed under a send: let the reader finish, then report why it closed."""
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
        while not self._events.empty():
            event = self._events.get_nowait()
            if isinstance(event, p.ServerError) and event.code == "session_expired":
                return CloudError("cloud-expired", "the cloud session reached its maximum duration")
            if isinstance(event, _Closed):
                return closed_error(event.code)
        return CloudError("cloud-dropped", "the cloud connection closed while sending")

    async def _next(self, wait_s: float) -> p.ServerEvent | _Interrupt:
        try:
            event = await asyncio.wait_for(self._events.get(), wait_s)
        except TimeoutError:
            raise CloudError("cloud-timeout", f"the cloud was silent for {wait_s:g} s") from None
        if isinstance(event, _Closed):
            raise closed_error(event.code)
        if isinstance(event, p.ServerError) and event.code == "session_expired":
            raise CloudError("cloud-expired", "the cloud session reached its maximum duration")
        return event

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
            outcome = await self._fail(err)
        self._touch()
        first = self._reply.first_sample_at
        if first is not None and first >= started:
            outcome = dataclasses.replace(outcome, first_audio_ms=round((first - started) * 1000))
        return outcome

    async def text_turn(self, text: str) -> CloudOutcome:
        """A typed or locally transcribed request answered in text (no audio)."""
        if not self.settings.enabled:
            return CloudOutcome("failed", prompt="cloud_disabled", code="cloud-disabled")
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

    async def side_task(self, text: str, instructions: str, purpose: str) -> str:
        """Out-of-band text answer about `text` that stays out of the conversation's history.

        Raises CloudError; the caller decides what a failed side task means.
        """
        if not self.settings.enabled:
            raise CloudError("cloud-disabled", "the cloud is disabled in the settings")
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
        self._reply = ReplyPlayer(self.sink, self.clock, self.settings.jitter_ms)
        self._heard_ms = 0
        self._stale = set(self._known)
        while not self._events.empty():  # stale events of an earlier, finished turn
            event = self._events.get_nowait()
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
        while True:
            event = await self._next(self.settings.response_timeout_s)
            if isinstance(event, _Interrupt) or self._interrupted:
                return self._outcome("interrupted", reply_text, user_text, results)
            match event:
                case p.ResponseCreated(response_id=rid, conversation_id=conv) if conv is not None:
                    mine.add(rid)
                case p.OutputItemAdded(response_id=rid, item=item) if rid in mine and item.type == "function_call":
                    if item.call_id and item.name:
                        names[item.call_id] = item.name
                case p.FunctionArgumentsDone(response_id=rid) if rid in mine:
                    calls.append(event)
                case p.AudioDelta(response_id=rid, item_id=item_id, audio=audio) if rid in mine and rid not in self._dropped:
                    self._reply.delta(rid, item_id, audio)
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
            if self._reply.played_ms != heard:
                heard, progress_at = self._reply.played_ms, loop.time()
            elif loop.time() - progress_at > PLAYOUT_STALL_S:
                log.warning("the speaker stalled %d ms before the end of the cloud reply", left)
                break
            try:
                event = await asyncio.wait_for(self._events.get(), min(left / 1000, PLAYOUT_POLL_S))
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
        if err.code == "cloud-timeout" and self._ws is not None and self._active is not None:
            with contextlib.suppress(CloudError):
                await self._send(p.ResponseCancel(self._active))
        if err.code not in ("cloud-response-failed", "cloud-rate-limited") or self._ws is None:
            # After a silent server, a drop or an expiry the session can't be trusted: start fresh.
            await self.close()
        return CloudOutcome("failed", prompt=PROMPTS.get(err.code, "cloud_error"), code=err.code)

    async def _run_calls(self, calls: list[p.FunctionArgumentsDone], names: dict[str, str]) -> list[ToolResult]:
        results = []
        for call in calls:
            name = call.name or names.get(call.call_id, "")
            result = self._results.get(call.call_id)
            if result is None:  # each call_id runs at most once (duplicated events, re-sends)
                result = await run_tool(self.tools, call.call_id, name, call.arguments,
                                        timeout_s=self.settings.tool_timeout_s)
                self._results[call.call_id] = result
            results.append(result)
            await self._send(p.FunctionCallOutput(call.call_id, tool_output(result)))
        return results

    # ------------------------------------------------------------ barge-in, idle

    async def interrupt(self, reason: str = "wake") -> int:
        """Barge-in: silence now, then cancel and truncate; returns the ms the user heard."""
        return await self._barge_in(server_cancels=False, reason=reason)

    async def _barge_in(self, *, server_cancels: bool, reason: str = "speech") -> int:
        heard = self._reply.stop()  # silence first, before any await: latency beats protocol order
        self._reply = ReplyPlayer(self.sink, self.clock, self.settings.jitter_ms)
        self._heard_ms += heard.played_ms
        # Late deltas of what was playing are dropped by response id (they race the cancel).
        self._dropped.update(heard.response_ids)
        if self._active is not None:
            self._dropped.add(self._active)
        log.info("cloud reply interrupted (%s) after %d ms", reason, heard.played_ms)
        if not server_cancels:
            self._interrupted = True  # the turn ends here; with server VAD the next reply follows
            self._events.put_nowait(_Interrupt())
        if self._ws is None:
            return heard.played_ms
        try:
            if not server_cancels and self._active is not None:
                await self._send(p.ResponseCancel(self._active))
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


def upsample(pcm16k: bytes) -> bytes:
    """16 kHz → 24 kHz pcm16 with soxr (the API takes 24 kHz PCM only)."""
    samples = np.frombuffer(pcm16k, dtype="<i2")
    if len(samples) == 0:
        return b""
    return np.asarray(soxr.resample(samples, 16000, p.PCM_RATE, quality="HQ"), dtype="<i2").tobytes()
