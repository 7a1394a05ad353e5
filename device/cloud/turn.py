"""The turn loop on a realtime session: responses, reply play-out, tool rounds, bounds, barge-in.

`TurnRunner._responses` consumes the session's events until a response completes without tool
calls: reply audio into the `ReplyPlayer` (and so the `AudioSink`), function calls through the
`ToolExecutor` (`calls.py`), then `response.create` for the next round. It returns once the reply
has been heard (not merely received); faults become a `CloudOutcome` with a prompt id the service
speaks locally, never an exception.

The server is not trusted to end a turn: every turn is bounded by an overall deadline, an
inactivity deadline (only events that carry the turn forward count), a cap on reply audio
(duration and bytes) and on audio queued ahead of the speaker; past any of them the turn ends with
a spoken prompt. While the turn is behind, it stops taking events, and the reader stops reading
(flow control), so memory stays bounded. Barge-in: the speaker stops before anything else
happens, then the reply is cancelled and truncated to what was heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from device.cloud import protocol as p
from device.cloud.calls import run_tool, tool_output
from device.cloud.connection import PROMPTS
from device.cloud.inbox import Closed, Interrupt, QueueItem, remember
from device.cloud.outcome import CloudOutcome, Status
from device.cloud.playback import ReplyPlayer
from device.cloud.session import RealtimeSession
from device.errors import CloudError
from device.events import ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolExecutor
from hal.sink import AudioSink

log = logging.getLogger(__name__)

HISTORY_ITEMS = 8
PLAYOUT_POLL_S = 0.05
PLAYOUT_STALL_S = 1.0
RATE_CODES = {"inference_rate_limit_exceeded", "rate_limit_exceeded", "insufficient_quota"}
MAX_CALLS = 8
"""Function calls run per response; more get an error result each."""
MAX_TOOL_ROUNDS = 8
MAX_RESPONSES = 32
"""Responses one turn may see; a real one needs one per tool round plus one."""
MEDIA_JITTER_MS = 40
"""Reply held before playback over WebRTC, on top of jitter_ms (measured: `voxhome bench cloud
--transport`, 0 gaps at 0 % loss with it, ~50 ms of gap at the end of each reply without)."""


class TurnRunner(RealtimeSession):
    """A session plus the state of the turn in progress: its reply player, bounds and tool calls."""

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
        super().__init__(settings, tools, clock=clock, sleep=sleep, rng=rng, wall=wall)
        self.sink = sink
        self._calls_run = 0
        self._reply = ReplyPlayer(sink, clock, settings.jitter_ms)
        self._interrupted = False
        self._heard_ms = 0
        """Reply heard before this turn's barge-ins replaced the reply player."""
        self._stale: set[str] = set()
        self._reply_ms = 0.0
        self._reply_bytes = 0

    @property
    def first_sample_at(self) -> float | None:
        """Clock time the current turn's first reply sample went to the sink (benchmarks)."""
        return self._reply.first_sample_at

    def _player(self) -> ReplyPlayer:
        # Over WebRTC the reply comes in real time, through aiortc's 4-frame receive buffer and two
        # resamplers: hold a little more of it, or the speaker runs dry before its last frames.
        extra = MEDIA_JITTER_MS if self._kind == "webrtc" else 0
        return ReplyPlayer(self.sink, self.clock, self.settings.jitter_ms + extra)

    def _heard_anything(self) -> bool:
        """Whether this turn already played reply audio or ran a tool (a retry would repeat them)."""
        return self._reply.started or self._heard_ms > 0 or self._calls_run > 0

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
        while not self._inbox.empty():  # stale events of an earlier, finished turn
            event = self._inbox.get_nowait()
            if isinstance(event, Closed):
                self._ws = None

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
            if isinstance(event, Interrupt) or self._interrupted:
                return self._outcome("interrupted", reply_text, user_text, results)
            if moves_turn(event, mine):
                progress_at = self.clock()
            match event:
                case p.ResponseCreated(response_id=rid, conversation_id=conv) if conv is not None:
                    mine.add(rid)
                    progress_at = self.clock()
                    if len(mine) > MAX_RESPONSES:
                        raise CloudError("cloud-response-failed", f"over {MAX_RESPONSES} responses in one turn")
                case p.OutputItemAdded(response_id=rid, item=item) if rid in mine and item.type == "function_call":
                    if item.call_id and item.name:
                        remember(names, item.call_id, item.name)
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
                event = await asyncio.wait_for(self._inbox.get(), min(left / 1000, PLAYOUT_POLL_S))
            except TimeoutError:
                continue
            match event:
                case Interrupt():
                    return "interrupted"
                case Closed():
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
                remember(self._results, call.call_id, result)
            results.append(result)
            try:
                output = tool_output(result)
            except (TypeError, ValueError, RecursionError):
                output = '{"ok":false,"error":"the result could not be encoded"}'
            await self._send(p.FunctionCallOutput(call.call_id, output))
        return results

    async def interrupt(self, reason: str = "wake") -> int:
        """Barge-in: silence now, then cancel and truncate; returns the ms the user heard."""
        return await self._barge_in(server_cancels=False, reason=reason)

    async def _barge_in(self, *, server_cancels: bool, reason: str = "speech") -> int:
        heard = self._reply.stop()  # silence first, before any await: latency beats protocol order
        self._reply = self._player()
        self._heard_ms += heard.played_ms
        # Late deltas of what was playing are dropped by response id (they race the cancel).
        for rid in heard.response_ids:
            remember(self._dropped, rid)
        if self._active is not None:
            remember(self._dropped, self._active)
        log.info("cloud reply interrupted (%s) after %d ms", reason, heard.played_ms)
        if not server_cancels:
            self._interrupted = True  # the turn ends here; with server VAD the next reply follows
            self._inbox.put(Interrupt())
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


def moves_turn(event: QueueItem, mine: set[str]) -> bool:
    """Whether an event is progress on this turn (for the inactivity deadline)."""
    if isinstance(event, p.InputTranscript | p.SpeechStarted | p.SpeechStopped | p.Committed):
        return True
    return getattr(event, "response_id", None) in mine

