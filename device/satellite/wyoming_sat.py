"""The speaker as a Wyoming satellite, for Home Assistant setups that still use wyoming-satellite.

HA connects (TCP 10700, zeroconf `_wyoming._tcp`), asks `describe` (→ `info` with a satellite
entry) and sends `run-satellite`. On a command the device sends `run-pipeline` (asr → tts), then
the utterance (`audio-start`, chunks, `audio-stop`); HA answers with `transcript`, `synthesize`
(the answer's text) and the answer's audio, which plays as it arrives and is confirmed with
`played`; HA's `error` ends the turn. Audio with no turn is an announcement. HA's `timer-*` events
go to the same hook as the ESPHome ones. Events are wyoming's own classes; only the session is ours.
`WyomingSatellite` implements the assistant's `CloudTurns`, like `pipeline.HaTurns`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr
from wyoming.asr import Transcript as WyTranscript
from wyoming.audio import AudioChunk as WyChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error as WyError
from wyoming.event import Event, async_write_event
from wyoming.info import Attribution, Describe, Info, Satellite
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.snd import Played
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import Synthesize

from device.cloud.realtime import CloudOutcome
from device.events import SAMPLE_RATE, AudioChunk, Error, Say, Transcript
from device.satellite.node import HaTimer
from device.satellite.pipeline import UNREACHABLE, HaOutcome
from hal.sink import AudioSink

log = logging.getLogger(__name__)

Emit = Callable[[object], Awaitable[None]]
CHUNK_BYTES = 2048
MAX_PART_BYTES = 1 << 20
"""A header's data or payload larger than this is refused (an answer chunk is a few KiB)."""
PLAYOUT_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class _Done:
    """The end of a turn as the connection handler saw it."""

    status: str
    played_ms: int = 0
    code: str | None = None
    message: str = ""


class _Answer:
    """HA's answer audio as it streams in: resampled to 16 kHz once, played as it comes."""

    def __init__(self, sink: AudioSink, rate: int, width: int, channels: int) -> None:
        if width != 2:
            raise ValueError(f"answer audio of width {width}; HA sends 16-bit")
        self.sink, self.rate, self.channels = sink, rate, channels
        self.base = sink.played_ms
        self.queued_ms = 0.0
        self.resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        self.stopped = False
        """Set by a barge-in: the speaker was stopped, nothing more will play."""

    def add(self, audio: bytes) -> None:
        x = np.frombuffer(audio[: len(audio) // (2 * self.channels) * 2 * self.channels], "<i2").astype(np.float32) / 32768
        x = x.reshape(-1, self.channels).mean(axis=1)
        self._play(self.resampler.resample_chunk(x) if self.resampler is not None else x)

    def _play(self, x: np.ndarray) -> None:
        if len(x):
            self.sink.play(AudioChunk((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()))
            self.queued_ms += 1000 * len(x) / SAMPLE_RATE

    async def finish(self, slack_s: float = 2.0) -> int:
        if self.resampler is not None:
            self._play(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.sink.flush()
        deadline = time.monotonic() + self.queued_ms / 1000 + slack_s
        # The sink's player thread advances played_ms and signals nothing, so it is polled.
        while not self.stopped and self.sink.played_ms - self.base < self.queued_ms - 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(PLAYOUT_POLL_S)
        if self.stopped:
            return 0
        return min(self.sink.played_ms - self.base, round(self.queued_ms))


class WyomingSatellite:
    def __init__(
        self,
        sink: AudioSink,
        *,
        name: str,
        port: int = 10700,
        area: str | None = None,
        wake_words: tuple[str, ...] = (),
        emit: Emit | None = None,
        timer: Callable[[HaTimer], Awaitable[None]] | None = None,
        event_timeout_s: float = 20.0,
    ) -> None:
        self._sink, self._name, self._port, self._area = sink, name, port, area
        self._wake_words, self._emit, self._timer = wake_words, emit, timer
        self._event_timeout_s = event_timeout_s
        self._server: asyncio.Server | None = None
        self._zeroconf: Any = None
        self._ha: asyncio.StreamWriter | None = None
        """The connection that sent run-satellite (the newest wins)."""
        self._turn: asyncio.Queue[_Done] | None = None
        self._texts: dict[str, str] = {}
        self._answer: _Answer | None = None
        """The answer streaming in (or playing out), if any."""
        self._timer_names: dict[str, str] = {}

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connected(self) -> bool:
        return self._ha is not None

    async def start(self, host: str = "0.0.0.0", *, announce: bool = True) -> None:  # noqa: S104 (HA is on the LAN)
        self._server = await asyncio.start_server(self._serve, host, self._port)
        log.info("Wyoming satellite on port %d as %r", self.port, self._name)
        if announce:
            await self._announce()

    async def close(self) -> None:
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_unregister_all_services()
            await self._zeroconf.async_close()
        if self._ha is not None:
            self._ha.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _announce(self) -> None:
        import socket

        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        from device.satellite.node import lan_addresses

        info = AsyncServiceInfo("_wyoming._tcp.local.", f"{self._name}._wyoming._tcp.local.", port=self.port,
                                addresses=[socket.inet_aton(a) for a in lan_addresses()])
        try:
            self._zeroconf = AsyncZeroconf()
            await self._zeroconf.async_register_service(info, allow_name_change=True)
        except Exception as err:  # no multicast here: HA can still add it by address
            log.warning("can't announce over zeroconf (%s); add the satellite in HA by its address", err)

    # --- CloudTurns -----------------------------------------------------------------------

    async def turn(self, utterance: bytes) -> CloudOutcome:
        writer = self._ha
        if writer is None:
            return HaOutcome("failed", prompt="cloud_unreachable", code="ha-not-connected", text=UNREACHABLE)
        self._turn, self._texts = asyncio.Queue(), {}
        started = time.monotonic()
        try:
            events = [RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(),
                      AudioStart(SAMPLE_RATE, 2, 1).event()]
            events += [WyChunk(SAMPLE_RATE, 2, 1, utterance[i:i + CHUNK_BYTES]).event()
                       for i in range(0, len(utterance), CHUNK_BYTES)]
            for event in [*events, AudioStop().event()]:
                await async_write_event(event, writer)
            try:
                done = await asyncio.wait_for(self._turn.get(), self._event_timeout_s)
            except TimeoutError:
                done = _Done("failed", code="ha-timeout", message="no answer from Home Assistant in time")
        except (ConnectionError, OSError) as err:
            done = _Done("failed", code="ha-unreachable", message=str(err))
        finally:
            self._turn = None
        user, reply = self._texts.get("transcript", ""), self._texts.get("synthesize", "")
        if done.status == "ok":
            return HaOutcome("ok" if reply or done.played_ms else "empty", user_text=user, reply_text=reply,
                             played_ms=done.played_ms, first_audio_ms=round((time.monotonic() - started) * 1000) - done.played_ms)
        log.warning("HA's Wyoming pipeline ended: [%s] %s", done.code, done.message)
        if done.code in ("ha-unreachable", "ha-timeout"):
            return HaOutcome("failed", prompt="cloud_unreachable", code=done.code, user_text=user, text=UNREACHABLE)
        return HaOutcome("failed", prompt="cloud_error", code=done.code, user_text=user, text="Home Assistant had a problem.")

    async def interrupt(self, reason: str = "wake") -> int:
        if self._turn is None:
            return 0
        heard = self._sink.stop()
        if self._answer is not None:
            self._answer.stopped = True
        self._answer = None
        self._turn.put_nowait(_Done("interrupted", heard, "interrupted", reason))
        return heard

    # --- one connection ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        try:
            while (event := await _read_event(reader)) is not None:
                await self._handle(event, writer, peer)
        except (ConnectionError, OSError) as err:
            log.info("Wyoming connection from %s dropped: %s", peer, err)
        except Exception as err:  # a malformed event (bad JSON, bad fields) ends that connection only
            log.warning("closed the Wyoming connection from %s: %s: %s", peer, type(err).__name__, err)
        finally:
            if self._ha is writer:
                self._ha = None
                log.info("Home Assistant (Wyoming) at %s disconnected", peer)
                if self._turn is not None:
                    self._turn.put_nowait(_Done("failed", code="ha-unreachable", message=f"{peer} disconnected"))
            writer.close()

    async def _handle(self, event: Event, writer: asyncio.StreamWriter, peer: str) -> None:  # noqa: C901 (one case per event)
        if Describe.is_type(event.type):
            await async_write_event(self._info().event(), writer)
        elif Ping.is_type(event.type):
            await async_write_event(Pong(text=Ping.from_event(event).text).event(), writer)
        elif RunSatellite.is_type(event.type):
            self._ha = writer
            log.info("Home Assistant (Wyoming) at %s runs the satellite", peer)
        elif PauseSatellite.is_type(event.type) and self._ha is writer:
            self._ha = None
        elif WyTranscript.is_type(event.type):
            self._texts["transcript"] = text = WyTranscript.from_event(event).text
            await self._say(Transcript(text))
        elif Synthesize.is_type(event.type):
            self._texts["synthesize"] = Synthesize.from_event(event).text
        elif AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            self._answer = _Answer(self._sink, start.rate, start.width, start.channels)
        elif WyChunk.is_type(event.type) and self._answer is not None:
            self._answer.add(WyChunk.from_event(event).audio)
        elif AudioStop.is_type(event.type) and self._answer is not None:
            answer = self._answer
            played = await answer.finish()
            self._answer = None
            await async_write_event(Played().event(), writer)
            if self._turn is not None and not answer.stopped:
                self._turn.put_nowait(_Done("ok", played))
        elif WyError.is_type(event.type):
            err = WyError.from_event(event)
            await self._say(Error(f"ha-{err.code or 'error'}", err.text))
            if self._turn is not None:
                self._turn.put_nowait(_Done("failed", code=f"ha-{err.code or 'error'}", message=err.text))
        elif (timer := _timer(event, self._timer_names)) is not None:
            log.info("HA timer %s: %s %r", timer.kind, timer.timer_id, timer.name)
            if self._timer is not None:
                await self._timer(timer)
            elif timer.kind == "finished":
                await self._say(Say(prompt="timer", text=f"The {timer.name} timer is done." if timer.name else "Your timer is done."))
        else:
            log.debug("Wyoming event %s not handled", event.type)

    def _info(self) -> Info:
        who = Attribution(name="voxhome", url="https://github.com/voxhome")
        return Info(satellite=Satellite(name=self._name, attribution=who, installed=True, description="voxhome speaker",
                                        version=None, area=self._area, has_vad=True,
                                        active_wake_words=list(self._wake_words), max_active_wake_words=len(self._wake_words) or 1,
                                        supports_trigger=False))

    async def _say(self, event: object) -> None:
        if self._emit is not None:
            await self._emit(event)


class _BadEvent(ValueError):
    pass


async def _read_event(reader: asyncio.StreamReader) -> Event | None:
    """wyoming's framing (a JSON header line, then data and payload by length), read with bounds:
    wyoming's own reader trusts the lengths and takes a malformed line for the end of the stream."""
    try:
        line = await reader.readline()
    except ValueError as err:  # the line outgrew the reader's limit
        raise _BadEvent(f"header line too long: {err}") from None
    if not line:
        return None
    try:
        header = json.loads(line)
    except ValueError as err:
        raise _BadEvent(f"header is not JSON: {err}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise _BadEvent("header without a type")
    data = header.get("data") or {}
    sizes = [header.get("data_length") or 0, header.get("payload_length") or 0]
    if not isinstance(data, dict) or not all(isinstance(n, int) and 0 <= n <= MAX_PART_BYTES for n in sizes):
        raise _BadEvent(f"bad data or lengths in a {header['type'][:40]!r} header")
    if sizes[0]:
        extra = json.loads(await reader.readexactly(sizes[0]))
        if not isinstance(extra, dict):
            raise _BadEvent("event data is not an object")
        data.update(extra)
    payload = await reader.readexactly(sizes[1]) if sizes[1] else None
    return Event(type=header["type"], data=data, payload=payload)


def _timer(event: Event, names: dict[str, str]) -> HaTimer | None:
    """HA's timer event; only 'started' carries the name, so it is remembered (bounded) by id."""
    if TimerStarted.is_type(event.type):
        s = TimerStarted.from_event(event)
        if len(names) >= 64:
            names.pop(next(iter(names)))
        names[s.id] = s.name or ""
        return HaTimer("started", s.id, s.name or "", s.total_seconds, s.total_seconds, True)
    if TimerUpdated.is_type(event.type):
        u = TimerUpdated.from_event(event)
        return HaTimer("updated", u.id, names.get(u.id, ""), u.total_seconds, u.total_seconds, u.is_active)
    if TimerCancelled.is_type(event.type):
        timer_id = TimerCancelled.from_event(event).id
        return HaTimer("cancelled", timer_id, names.pop(timer_id, ""), 0, 0, False)
    if TimerFinished.is_type(event.type):
        timer_id = TimerFinished.from_event(event).id
        return HaTimer("finished", timer_id, names.pop(timer_id, ""), 0, 0, False)
    return None
