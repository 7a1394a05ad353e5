"""A fake realtime server on `websockets` for tests, the benchmark and the demo.

It speaks the reference protocol in either dialect: session.update, audio append/commit/clear,
response.create with streamed audio and transcript deltas, function calls, cancel, truncate and
the documented error codes. Two ways to drive it:

- scripted: queue `Reply`s (text, audio length, function calls, faults) and let it answer;
- replay: serve a transcript from `realtime-events/` line by line, waiting for each client line
  and recording every mismatch in `mismatches` (matched on type and key fields, as the fixture
  format asks).

Handshake faults (401/429/5xx, the beta header rejected with close 4000, a key check) are options.
With `webrtc=True` it also answers WebRTC calls (`fake_webrtc.py`: the calls endpoint, aiortc on
its side, the same scripted replies, and injectable loss, jitter and RTT on its audio).
Everything is generated as GA events and rendered for the dialect by `protocol.server_to_dialect`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from device.cloud.fake_link import DelayLine, ImpairedSocket, Impairment
from device.cloud.protocol import BYTES_PER_MS, PCM_RATE, Dialect, server_to_dialect

log = logging.getLogger(__name__)

DELTA_MS = 40
KEY_FIELDS = ("item_id", "call_id", "response_id", "audio_end_ms", "content_index")


@dataclass(frozen=True, slots=True)
class Reply:
    """How the fake answers one response.create."""

    text: str = "Okay."
    audio_ms: int = 200
    calls: tuple[tuple[str, str], ...] = ()
    """(name, arguments JSON) per function call; the audio/text part is then skipped."""
    pace_ms: float = 0.0
    """Delay between audio deltas (0 = as fast as possible, like an instant server)."""
    fail_code: str | None = None
    """End with response.done status 'failed' and this error code."""
    server_error: bool = False
    """Send a server_error event and then nothing (a stuck response)."""
    silent: bool = False
    """Never answer this response.create."""
    drop_after: int | None = None
    """Cut the TCP connection after this many audio deltas."""
    endless: bool = False
    """Hostile: audio deltas without end (never audio.done, never response.done)."""
    raw: tuple[str | bytes, ...] = ()
    """Hostile: frames sent verbatim right after response.created (bad JSON, wrong types, floods)."""
    flood: str | None = None
    """Hostile: after response.created, send this frame without end instead of a reply."""


def tone(ms: int, start_sample: int = 0, freq: float = 440.0) -> bytes:
    """A 24 kHz PCM16 sine: audible, so tests can tell reply audio from silence."""
    n = ms * PCM_RATE // 1000
    out = bytearray()
    for i in range(start_sample, start_sample + n):
        v = int(8000 * math.sin(2 * math.pi * freq * i / PCM_RATE))
        out += v.to_bytes(2, "little", signed=True)
    return bytes(out)


def load_transcript(path: Path) -> list[tuple[str, dict[str, Any]]]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            d = json.loads(raw)
            lines.append((d["dir"], d["event"]))
    return lines


@dataclass
class _Conn:
    ws: Any
    """The WebSocket, or the WebRTC data channel's peer (fake_webrtc.ChannelPeer: same send/close/abort)."""
    dialect: Dialect
    media: Any = None
    """WebRTC: the reply's audio track (play/clear/drained); None: audio deltas on the socket."""
    playing: str | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    buffered_ms: float = 0.0
    audible_ms: float = 0.0
    """WebRTC: of buffered_ms, the frames that weren't silence (the utterance, not its flush)."""
    active: str | None = None
    stream: asyncio.Task[None] | None = None
    audio_ms: dict[str, int] = field(default_factory=dict)
    last_item: str | None = None


class FakeRealtimeServer:
    """`async with FakeRealtimeServer(...) as server:` then connect to `server.url`."""

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        replies: list[Reply] | None = None,
        replay: Path | None = None,
        close_after: tuple[int, str] | None = None,
        reject_status: int | None = None,
        reject_beta: bool = False,
        api_key: str | None = None,
        silent: bool = False,
        cycle: bool = False,
        session_s: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        webrtc: bool = False,
        impairment: Impairment | None = None,
        webrtc_fault: str | None = None,
        calls_status: int | None = None,
    ) -> None:
        self.dialect = dialect
        self.replies: deque[Reply] = deque(replies or ())
        self.replay = load_transcript(replay) if replay else None
        self.close_after = close_after
        self.reject_status = reject_status
        self.reject_beta = reject_beta
        self.api_key = api_key
        self.silent = silent
        self.cycle = cycle
        self.session_s = session_s
        """Reuse `replies` in a loop (the simulator) instead of consuming them once (tests)."""
        self.host, self.port = host, port
        self.received: list[dict[str, Any]] = []
        self.mismatches: list[str] = []
        self.connections = 0
        self.first_delta_sent: list[float] = []
        self.committed_ms: list[float] = []
        """Input audio each commit took (WebRTC: what had arrived on the track by then)."""
        self.committed_audible_ms: list[float] = []
        """Over WebRTC, of committed_ms, the frames that weren't silence."""
        """time.perf_counter() when each response's first audio delta went out (benchmarks)."""
        self.headers: list[dict[str, str]] = []
        self.deltas_sent = 0
        self.replay_finished = asyncio.Event()
        self._server: Server | None = None
        self._conns: list[_Conn] = []
        self.webrtc = webrtc
        self.impairment = impairment or Impairment()
        self.webrtc_fault = webrtc_fault
        """'ice' (unreachable candidates) or 'dtls' (a wrong fingerprint) in every SDP answer."""
        self.calls_status = calls_status
        """Refuse every WebRTC call with this HTTP status."""
        self.calls: Any = None
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime?model=gpt-realtime"

    async def __aenter__(self) -> FakeRealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The REST base for WebRTC (client secrets, calls)."""
        assert self.calls is not None, "start the fake with webrtc=True"
        return f"http://{self.host}:{self.calls.port}/v1"

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_request,
            max_size=None, compression=None,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        if self.webrtc:
            from device.cloud.fake_webrtc import CallsEndpoint  # aiortc only when asked for

            self.calls = CallsEndpoint(self)
            await self.calls.start()

    async def stop(self) -> None:
        if self.calls is not None:
            await self.calls.stop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # ------------------------------------------------------------ handshake

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.connections += 1
        self.headers.append({k.lower(): v for k, v in request.headers.raw_items()})
        if self.reject_status is not None:
            status = HTTPStatus(self.reject_status)
            return connection.respond(status, f'{{"error":{{"message":"{status.phrase}"}}}}\n')
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, '{"error":{"code":"invalid_api_key"}}\n')
        return None

    # ------------------------------------------------------------ session

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(ws, self.dialect)
        self._conns.append(conn)
        inbound = None
        try:
            if self.reject_beta and ws.request is not None and ws.request.headers.get("OpenAI-Beta"):
                await self._send(conn, _error("beta_api_shape_disabled", "The Realtime Beta API is no longer supported."))
                await ws.close(4000, "beta_api_shape_disabled")
                return
            if self.replay is not None:
                await self._replay(conn)
                return
            if self.silent:
                await ws.wait_closed()
                return
            if self.impairment.any:  # the same link model as the WebRTC side (fake_link.py)
                conn.ws = ImpairedSocket(ws, self.impairment)
                inbound = DelayLine(lambda m: self._on_message(conn, m), self.impairment, lossy=False)
            await self._send(conn, {"type": "session.created", "session": self._session()})
            async for message in ws:
                if inbound is not None:
                    inbound.put(message)
                else:
                    await self._on_message(conn, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if inbound is not None:
                inbound.stop()
            if isinstance(conn.ws, ImpairedSocket):
                conn.ws.stop()
            if conn.stream is not None:
                conn.stream.cancel()
            self._conns.remove(conn)

    async def _on_message(self, conn: _Conn, message: str | bytes) -> None:
        event = json.loads(message)
        self.received.append(event)
        await self._on_client(conn, event)

    def _session(self) -> dict[str, Any]:
        if self.dialect == "beta":
            return {"id": "sess_FAKE", "object": "realtime.session", "modalities": ["text", "audio"],
                    "input_audio_format": "pcm16", "expires_at": int(time.time()) + self.session_s}
        return {"type": "realtime", "id": "sess_FAKE", "object": "realtime.session",
                "expires_at": int(time.time()) + self.session_s, "audio": {}}

    async def _send(self, conn: _Conn, event: dict[str, Any]) -> None:
        event = {"event_id": f"event_FAKE_{next(self._ids)}", **event}
        for out in server_to_dialect(event, conn.dialect):
            await conn.ws.send(json.dumps(out))

    async def expire(self) -> None:
        """End every open session the way OpenAI does at its maximum duration."""
        for conn in list(self._conns):
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send(conn, _error("session_expired", "Your session hit the maximum duration of 60 minutes."))
                await conn.ws.close(1001, "Your session hit the maximum duration of 60 minutes.")

    async def _on_client(self, conn: _Conn, event: dict[str, Any]) -> None:
        kind, eid = event.get("type"), event.get("event_id")
        match kind:
            case "session.update":
                session = event.get("session") or {}
                if conn.dialect == "ga" and session.get("type") != "realtime":
                    await self._send(conn, _error("missing_required_parameter", "Missing 'session.type'.", eid, "session.type"))
                elif conn.dialect == "ga" and "modalities" in session:
                    await self._send(conn, _error("unknown_parameter", "Unknown 'session.modalities'.", eid, "session.modalities"))
                elif conn.dialect == "beta" and "type" in session:
                    await self._send(conn, _error("unknown_parameter", "Unknown 'session.type'.", eid, "session.type"))
                else:
                    await self._send(conn, {"type": "session.updated", "session": self._session()})
            case "input_audio_buffer.append":
                conn.buffered_ms += len(base64.b64decode(event.get("audio", ""))) / BYTES_PER_MS
            case "input_audio_buffer.clear":
                conn.buffered_ms = conn.audible_ms = 0
                await self._send(conn, {"type": "input_audio_buffer.cleared"})
            case "input_audio_buffer.commit":
                if conn.buffered_ms < 100:
                    await self._send(conn, _error("input_audio_buffer_commit_empty", "buffer too small", eid))
                    return
                self.committed_ms.append(conn.buffered_ms)
                self.committed_audible_ms.append(conn.audible_ms)
                conn.buffered_ms = conn.audible_ms = 0
                item = {"id": f"item_FAKE_user_{next(self._ids)}", "type": "message", "status": "completed",
                        "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
                await self._send(conn, {"type": "input_audio_buffer.committed", "item_id": item["id"], "previous_item_id": conn.last_item})
                await self._added_done(conn, item)
            case "conversation.item.create":
                item = dict(event.get("item") or {})
                item.setdefault("id", f"item_FAKE_{next(self._ids)}")
                item["status"] = "completed"
                await self._added_done(conn, item)
            case "response.create":
                if conn.active is not None:
                    await self._send(conn, _error("conversation_already_has_active_response",
                                                  f"Conversation already has an active response {conn.active}", eid))
                    return
                reply = self.replies.popleft() if self.replies else Reply()
                if self.cycle:
                    self.replies.append(reply)
                if reply.silent:
                    return
                conn.active = f"resp_FAKE_{next(self._ids)}"
                conn.stream = asyncio.create_task(self._respond(conn, conn.active, reply))
            case "response.cancel":
                if conn.active is None:
                    await self._send(conn, _error("response_cancel_not_active", "no active response", eid))
                elif conn.stream is not None:
                    conn.stream.cancel()
                    rid = conn.active
                    conn.active = None
                    await self._done(conn, rid, "cancelled", {"type": "cancelled", "reason": "client_cancelled"})
            case "output_audio_buffer.clear" if conn.media is not None:
                conn.media.clear()
                playing, conn.playing = conn.playing, None
                await self._send(conn, {"type": "output_audio_buffer.cleared", "response_id": playing})
            case "conversation.item.truncate":
                item_id, end = event.get("item_id"), event.get("audio_end_ms", 0)
                if item_id not in conn.audio_ms or end > conn.audio_ms[item_id]:
                    await self._send(conn, _error("invalid_value", "audio_end_ms beyond the item's audio", eid))
                else:
                    await self._send(conn, {"type": "conversation.item.truncated", "item_id": item_id,
                                            "content_index": 0, "audio_end_ms": end})
            case _:
                await self._send(conn, _error("invalid_value", f"Invalid event type {kind!r}", eid))

    async def _added_done(self, conn: _Conn, item: dict[str, Any]) -> None:
        prev, conn.last_item = conn.last_item, item["id"]
        await self._send(conn, {"type": "conversation.item.added", "previous_item_id": prev, "item": item})
        await self._send(conn, {"type": "conversation.item.done", "previous_item_id": prev, "item": item})

    async def _respond(self, conn: _Conn, rid: str, reply: Reply) -> None:
        await self._send(conn, {"type": "response.created", "response": {
            "object": "realtime.response", "id": rid, "status": "in_progress", "output": [], "conversation_id": "conv_FAKE"}})
        for frame in reply.raw:
            await conn.ws.send(frame)
        while reply.flood is not None:
            await conn.ws.send(reply.flood)
            await asyncio.sleep(reply.pace_ms / 1000)
        if reply.server_error:
            await self._send(conn, {"type": "error", "error": {"type": "server_error", "code": None,
                                                              "message": "The server had an error.", "param": None, "event_id": None}})
            return
        output: list[dict[str, Any]] = []
        for index, (name, args) in enumerate(reply.calls):
            call_id = f"call_FAKE_{next(self._ids)}"
            item: dict[str, Any] = {"id": f"item_FAKE_{next(self._ids)}", "object": "realtime.item", "type": "function_call",
                    "status": "in_progress", "name": name, "call_id": call_id, "arguments": ""}
            base = {"response_id": rid, "item_id": item["id"], "output_index": index, "call_id": call_id}
            await self._send(conn, {"type": "response.output_item.added", "response_id": rid, "output_index": index, "item": item})
            await self._send(conn, {"type": "response.function_call_arguments.delta", **base, "delta": args})
            await self._send(conn, {"type": "response.function_call_arguments.done", **base, "name": name, "arguments": args})
            item = {**item, "status": "completed", "arguments": args}
            await self._send(conn, {"type": "response.output_item.done", "response_id": rid, "output_index": index, "item": item})
            output.append(item)
        if not reply.calls:
            item_id = f"item_FAKE_asst_{next(self._ids)}"
            conn.audio_ms[item_id] = 0
            part: dict[str, Any] = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
            item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            await self._send(conn, {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item})
            await self._send(conn, {"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}})
            await self._send(conn, {"type": "response.output_audio_transcript.delta", **part, "delta": reply.text})
            sent = 0
            deltas = itertools.count() if reply.endless else range(math.ceil(reply.audio_ms / DELTA_MS))
            for n in deltas:
                if reply.drop_after is not None and n >= reply.drop_after:
                    conn.ws.transport.abort()
                    return
                ms = DELTA_MS if reply.endless else min(DELTA_MS, reply.audio_ms - sent)
                audio = tone(ms, (sent * PCM_RATE // 1000) % PCM_RATE)
                if n == 0:
                    self.first_delta_sent.append(time.perf_counter())
                    if conn.media is not None:
                        conn.playing = rid
                        await self._send(conn, {"type": "output_audio_buffer.started", "response_id": rid})
                if conn.media is not None:
                    conn.media.push(audio, PCM_RATE)  # over WebRTC the reply is the track, not deltas
                else:
                    await self._send(conn, {"type": "response.output_audio.delta", **part, "delta": base64.b64encode(audio).decode()})
                sent += ms
                conn.audio_ms[item_id] = sent
                self.deltas_sent += 1
                # Yield even unpaced: in one process a busy fake would starve its client's reader.
                await asyncio.sleep(reply.pace_ms / 1000)
            await self._send(conn, {"type": "response.output_audio.done", **part})
            await self._send(conn, {"type": "response.output_audio_transcript.done", **part, "transcript": reply.text})
            content = [{"type": "output_audio", "transcript": reply.text}]
            item = {**item, "status": "completed", "content": content}
            await self._send(conn, {"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item})
            output.append(item)
        conn.active = None
        if reply.fail_code:
            await self._done(conn, rid, "failed", {"type": "failed", "error": {"type": "invalid_request_error", "code": reply.fail_code}}, output)
        else:
            await self._done(conn, rid, "completed", None, output)
        if conn.media is not None and not reply.calls:
            # WebRTC: response.done comes when generation ends; the play-out ends later.
            task = asyncio.create_task(self._stopped(conn, rid))
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)

    async def _stopped(self, conn: _Conn, rid: str) -> None:
        await conn.media.drained()
        if conn.playing == rid:
            await self._send(conn, {"type": "output_audio_buffer.stopped", "response_id": rid})

    async def _done(self, conn: _Conn, rid: str, status: str, details: dict[str, Any] | None,
                    output: list[dict[str, Any]] | None = None) -> None:
        await self._send(conn, {"type": "response.done", "response": {
            "object": "realtime.response", "id": rid, "status": status, "status_details": details,
            "output": output or [], "conversation_id": "conv_FAKE", "usage": {"total_tokens": 0}}})

    # ------------------------------------------------------------ replay

    async def _replay(self, conn: _Conn) -> None:
        assert self.replay is not None
        # Appends carry audio whose length depends on the utterance, and a clear before a turn
        # is harmless; neither is matched one-for-one. Everything else is.
        expected = [(d, e) for d, e in self.replay if not (d == "client" and e["type"] == "input_audio_buffer.append")]
        for direction, event in expected:
            if direction == "server":
                await conn.ws.send(json.dumps(event))
                continue
            while True:
                got = json.loads(await conn.ws.recv())
                self.received.append(got)
                if got["type"] == event["type"]:
                    break
                if got["type"] in ("input_audio_buffer.append", "input_audio_buffer.clear"):
                    continue
                self.mismatches.append(f"expected {event['type']}, got {got['type']}")
            for key in KEY_FIELDS:
                if key in event and got.get(key) != event[key]:
                    self.mismatches.append(f"{event['type']}.{key}: expected {event[key]!r}, got {got.get(key)!r}")
            if event["type"] == "conversation.item.create":
                want, have = event["item"], got.get("item", {})
                if want.get("call_id") != have.get("call_id") or _json(want.get("output")) != _json(have.get("output")):
                    self.mismatches.append(f"function_call_output: expected {want}, got {have}")
            if event["type"] == "response.create" and "response" in event:
                want, have = event["response"], got.get("response", {})
                for key in ("conversation", "input", "tools", "tool_choice", "modalities", "output_modalities"):
                    if want.get(key) != have.get(key):
                        self.mismatches.append(f"response.create.{key}: expected {want.get(key)!r}, got {have.get(key)!r}")
                if (want.get("metadata") or {}).get("purpose") != (have.get("metadata") or {}).get("purpose"):
                    self.mismatches.append("response.create.metadata.purpose differs")
            if event["type"] == "session.update":
                ga_shape = "type" in got.get("session", {})
                if ga_shape != ("type" in event["session"]):
                    self.mismatches.append("session.update in the wrong dialect")
        self.replay_finished.set()
        if self.close_after is not None:
            await conn.ws.close(*self.close_after)
            return
        async for message in conn.ws:
            self.received.append(json.loads(message))


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _error(code: str, message: str, event_id: Any = None, param: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message,
                                      "param": param, "event_id": event_id}}
