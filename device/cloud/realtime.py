"""The cloud fallback: one conversation with a realtime speech model, over WebSocket or WebRTC.

`RealtimeClient.turn(utterance)` sends one utterance (16 kHz pcm16, pre-roll included), plays the
spoken reply into the `AudioSink` as it arrives, runs the model's tool calls through the
`ToolExecutor`, and returns once the reply has been heard with a `CloudOutcome`: faults become a
prompt id the service speaks locally ("cloud_unreachable"), never an exception. `interrupt()` is
barge-in; `abort()` ends whatever a turn awaits, at once (service shutdown). A turn WebRTC can't
carry goes over the WebSocket once, unless something of it was already heard.

The parts: `session.py` (transport, reader, sending, session lifetime), `turn.py` (responses,
play-out, bounds, tool rounds, barge-in), `inbox.py` (the bounded event queue), `outcome.py`,
`calls.py` (tool calls), `protocol.py` (wire shapes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
import soxr

from device.cloud import protocol as p
from device.cloud.outcome import CloudOutcome
from device.cloud.transport import TransportClosed
from device.cloud.turn import TurnRunner
from device.errors import CloudError
from device.settings import CloudSettings
from device.tools.api import ToolExecutor
from hal.sink import AudioSink

__all__ = ["CloudOutcome", "RealtimeClient", "upsample"]

log = logging.getLogger(__name__)

APPEND_MS = 100
NO_FALLBACK = frozenset({"cloud-turn-timeout", "cloud-reply-too-long", "cloud-overflow", "cloud-disabled"})
"""WebRTC faults the WebSocket can't fix: the turn's own bounds were broken."""


class RealtimeClient(TurnRunner):
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
        super().__init__(settings, tools, sink, clock=clock, sleep=sleep, rng=rng, wall=wall)
        self._turn_task: asyncio.Task[CloudOutcome] | None = None
        self._aborted = False
        self._side_tasks = 0

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

    async def _audio_turn(self, utterance: bytes) -> CloudOutcome:
        client_vad = self.settings.turn_detection == "client"
        media = self._ws is not None and self._ws.media
        if client_vad and len(utterance) < APPEND_MS * 32:  # 16 kHz pcm16: 32 bytes a ms
            # The API rejects commits under 100 ms; that much audio isn't a request anyway.
            return CloudOutcome("empty")
        if client_vad and not media:
            # Over WebRTC no clear: RTP and the data channel are separate streams, so a clear sent
            # ahead of the audio can land after its first frames and drop them. Nothing stale is
            # there to drop anyway: with client turn detection the track only ever carries
            # committed utterances (and the silence that flushes each one out).
            await self._send(p.AudioClear())
        if self._ws is not None and media:
            try:
                # On the Opus track, no appends; all of it is buffered already, so faster than spoken.
                await self._ws.send_audio(utterance, self.settings.upload_speed)
            except TransportClosed:
                raise await self._why_closed() from None
        else:
            audio = upsample(utterance)
            step = APPEND_MS * p.BYTES_PER_MS
            for start in range(0, len(audio), step):
                await self._send(p.AudioAppend(audio[start:start + step]))
        if client_vad:
            await self._send(p.AudioCommit())
            await self._wait_idle()
            await self._send(p.ResponseCreate())
        return await self._responses()

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


def upsample(pcm16k: bytes) -> bytes:
    """16 kHz → 24 kHz pcm16 with soxr (the API takes 24 kHz PCM only)."""
    samples = np.frombuffer(pcm16k, dtype="<i2")
    if len(samples) == 0:
        return b""
    return np.asarray(soxr.resample(samples, 16000, p.PCM_RATE, quality="HQ"), dtype="<i2").tobytes()
