"""The seam between the realtime client and the wire it speaks over.

The client's turn logic (`realtime.py`) talks to a `Transport`: it sends protocol events as JSON
text, reads frames back, and hands it the utterance when the transport carries audio itself.
Two implementations: the WebSocket (`WebSocketTransport`, here; audio travels as
`input_audio_buffer.append` / `response.output_audio.delta` events in the text stream) and WebRTC
(`device/cloud/webrtc.py`; audio on an Opus track, events on the `oai-events` data channel). Every
frame either goes through the same parser or already is a typed protocol event (the reply audio a
media track decoded), so the client does not know which wire it got.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection

from device.cloud import protocol as p

Frame = str | bytes | p.ServerEvent
"""A wire frame still to parse, or an event the transport produced itself (decoded media)."""


class TransportClosed(Exception):
    """The transport is gone; `code` is the WebSocket close code (None: no close frame / not a socket)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"transport closed ({code}) {reason}")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    media: bool
    """True when audio travels on a media track: no appends are sent and no audio deltas arrive."""
    name: str
    gaps_ms: int
    """Reply audio lost on the way and replaced by silence (media transports; 0 over TCP)."""

    def frames(self) -> AsyncIterator[Frame]:
        """Frames in arrival order; ends by raising TransportClosed."""
        ...

    async def send(self, text: str) -> None:
        """One client event as JSON; raises TransportClosed."""
        ...

    async def send_audio(self, pcm16k: bytes, speed: float = 1.0) -> None:
        """Stream an utterance (16 kHz pcm16) on the media track at `speed` times real time;
        returns once it has gone out."""
        ...

    async def sent_bytes(self) -> int:
        """Upstream bytes so far (payload the transport sent), for the benchmark."""
        ...

    async def close(self) -> None: ...


class WebSocketTransport:
    """The realtime WebSocket: every event, audio included, is a text frame."""

    media = False
    name = "websocket"
    gaps_ms = 0

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._sent = 0

    async def frames(self) -> AsyncIterator[Frame]:
        try:
            async for message in self.ws:
                yield message
        except websockets.ConnectionClosed as err:
            code, reason = (err.rcvd.code, err.rcvd.reason) if err.rcvd else (None, "")
            if err.sent is not None and err.sent.code == 1009:  # we refused an oversized frame
                code, reason = 1009, err.sent.reason
            raise TransportClosed(code, reason) from None
        raise TransportClosed(self.ws.close_code, self.ws.close_reason or "")

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except websockets.ConnectionClosed:
            raise TransportClosed(self.ws.close_code, self.ws.close_reason or "") from None
        self._sent += len(text)

    async def send_audio(self, pcm16k: bytes, speed: float = 1.0) -> None:
        raise NotImplementedError("the WebSocket carries audio as append events")

    async def sent_bytes(self) -> int:
        return self._sent

    async def close(self) -> None:
        await self.ws.close()
