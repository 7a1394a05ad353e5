"""The fake realtime server's WebRTC side: a calls endpoint with aiortc answering on loopback.

`POST /v1/realtime/client_secrets` mints an `ek_` secret (checked against the fake's api_key);
`POST /v1/realtime/calls` takes the SDP offer and answers 201 with aiortc's SDP. The `oai-events`
data channel then carries the same scripted session as the fake's WebSocket (its `_on_client`),
and the reply is spoken on an Opus track instead of as audio deltas.

Impairments (`Impairment`): reply frames lost or late (jitter) on the fake's sending side, and
half the RTT added to every data-channel message each way and to the start of the reply audio.
Faults: `webrtc_fault="ice"` answers with unreachable candidates, `"dtls"` with a wrong
certificate fingerprint; `calls_status` refuses the call with that HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import time
from http import HTTPStatus
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from device.cloud.fake_link import DelayLine, Impairment
from device.cloud.fake_server import FakeRealtimeServer, _Conn
from device.cloud.media import PacedTrack

log = logging.getLogger(__name__)


class ImpairedTrack(PacedTrack):
    """The fake's voice: paced like the device's track, with loss, jitter and half the RTT."""

    flush_frames = 8
    """Like a service that keeps its track going: past the receiver's 4 held frames, enough
    silence to carry the reply's last samples through the device's resamplers in real time."""

    def __init__(self, impairment: Impairment) -> None:
        super().__init__()
        self.impairment = impairment
        self.delay_s = impairment.rtt_ms / 2000
        self._rng = random.Random(impairment.seed)
        self.lost = 0

    def _lost(self) -> bool:
        if self.impairment.loss > 0 and self._rng.random() < self.impairment.loss:
            self.lost += 1
            return True
        return False

    def _late_s(self) -> float:
        return self._rng.uniform(0, self.impairment.jitter_ms / 1000) if self.impairment.jitter_ms else 0.0


class ChannelPeer:
    """The data channel behind a `_Conn`, shaped like the fake's WebSocket (send/close/abort)."""

    def __init__(self, channel: Any, impairment: Impairment) -> None:
        self.channel = channel
        self.transport = self  # `conn.ws.transport.abort()` cuts the link, as on the socket
        self._out = DelayLine(self._send_now, impairment, lossy=False)
        self.inbound: DelayLine | None = None

    async def _send_now(self, message: str | bytes) -> None:
        if self.channel.readyState == "open":
            self.channel.send(message)

    async def send(self, message: str | bytes) -> None:
        self._out.put(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.abort()

    def abort(self) -> None:
        """The data channel closes mid-session (the client sees it close)."""
        self._out.stop()
        if self.inbound is not None:
            self.inbound.stop()
        self.channel.close()


class CallsEndpoint:
    """HTTP on loopback (`asyncio` streams: two POST routes), one aiortc peer per call."""

    def __init__(self, server: FakeRealtimeServer) -> None:
        self.server = server
        self.port = 0
        self.secrets: set[str] = set()
        self.offers: list[str] = []
        self.tracks: list[ImpairedTrack] = []
        self.media_ms = 0.0
        """Upstream audio received on the calls' tracks."""
        self._ids = itertools.count(1)
        self._http: asyncio.Server | None = None
        self._pcs: dict[RTCPeerConnection, _Conn] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._http = await asyncio.start_server(self._serve, self.server.host, 0)
        self.port = self._http.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for pc, conn in list(self._pcs.items()):
            with contextlib.suppress(Exception):
                await self._hang_up(pc, conn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
            lines = head.split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if v}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, ctype, out, extra = await self._route(method, path, headers, body)
            writer.write(
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(out)}\r\nConnection: close\r\n{extra}\r\n".encode() + out
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ValueError, ConnectionError) as err:
            log.debug("fake calls endpoint: bad request: %s", err)
        finally:
            writer.close()

    def _authorized(self, headers: dict[str, str], *, secret_ok: bool) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        return bearer == key or (secret_ok and bearer in self.secrets)

    async def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes, str]:
        self.server.headers.append(headers)
        if method == "POST" and path.startswith("/v1/realtime/client_secrets"):
            if not self._authorized(headers, secret_ok=False):
                return 401, "application/json", b'{"error":{"code":"invalid_api_key"}}', ""
            value = f"ek_FAKE_{next(self._ids)}"
            self.secrets.add(value)
            answer = {"value": value, "expires_at": int(time.time()) + 600, "session": {"type": "realtime"}}
            return 200, "application/json", json.dumps(answer).encode(), ""
        if method == "POST" and path.startswith("/v1/realtime/calls"):
            self.server.connections += 1
            if self.server.calls_status is not None:
                phrase = HTTPStatus(self.server.calls_status).phrase
                return self.server.calls_status, "application/json", f'{{"error":{{"message":"{phrase}"}}}}'.encode(), ""
            if not self._authorized(headers, secret_ok=True):
                return 401, "application/json", b'{"error":{"code":"invalid_api_key"}}', ""
            self.offers.append(body.decode())
            sdp, call_id = await self._answer(body.decode())
            return 201, "application/sdp", sdp.encode(), f"Location: /v1/realtime/calls/{call_id}\r\n"
        return 404, "application/json", b'{"error":{"message":"not found"}}', ""

    # ------------------------------------------------------------ the call

    async def _answer(self, offer: str) -> tuple[str, str]:
        server = self.server
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = ImpairedTrack(server.impairment)
        self.tracks.append(track)
        conn = _Conn(None, server.dialect, media=track)
        self._pcs[pc] = conn

        @pc.on("datachannel")
        def _channel(channel: Any) -> None:
            conn.ws = peer = ChannelPeer(channel, server.impairment)
            peer.inbound = DelayLine(lambda m: server._on_message(conn, m), server.impairment, lossy=False)
            channel.on("message", peer.inbound.put)
            self._spawn(self._session(conn))

        @pc.on("track")
        def _track(remote: MediaStreamTrack) -> None:
            self._spawn(self._listen(conn, remote))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._hang_up(pc, conn)

        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        pc.addTrack(track)
        await pc.setLocalDescription(await pc.createAnswer())
        return _fault(pc.localDescription.sdp, server.webrtc_fault), f"rtc_FAKE_{next(self._ids)}"

    async def _session(self, conn: _Conn) -> None:
        self.server._conns.append(conn)
        await self.server._send(conn, {"type": "session.created", "session": self.server._session()})

    async def _listen(self, conn: _Conn, remote: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await remote.recv()
            except MediaStreamError:
                return
            ms = getattr(frame, "samples", 0) * 1000 / getattr(frame, "sample_rate", 48000)
            conn.buffered_ms += ms
            if isinstance(frame, av.AudioFrame) and np.abs(frame.to_ndarray()).max(initial=0) > 300:
                conn.audible_ms += ms
            self.media_ms += ms

    async def _hang_up(self, pc: RTCPeerConnection, conn: _Conn) -> None:
        if conn.stream is not None:
            conn.stream.cancel()
        for task in list(conn.tasks):
            task.cancel()
        if conn in self.server._conns:
            self.server._conns.remove(conn)
        if isinstance(conn.ws, ChannelPeer):
            conn.ws.abort()
        self._pcs.pop(pc, None)
        await pc.close()


def _fault(sdp: str, fault: str | None) -> str:
    if fault == "ice":
        # Candidates nobody answers on, and the wrong password for the checks our own side sends
        # (else the client learns a peer-reflexive candidate from them): ICE never succeeds.
        sdp = re.sub(r"a=candidate:.*\r\n", "", sdp)
        sdp = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:" + "x" * 22, sdp)
        return sdp.replace("a=end-of-candidates", "a=candidate:1 1 udp 2130706431 192.0.2.254 9 typ host\r\na=end-of-candidates")
    if fault == "dtls":
        # A certificate fingerprint that isn't ours: the DTLS handshake is refused.
        return re.sub(r"(a=fingerprint:\S+ )([0-9A-Fa-f:]+)", lambda m: m[1] + re.sub(r"[0-9A-Fa-f]", "0", m[2]), sdp)
    return sdp
