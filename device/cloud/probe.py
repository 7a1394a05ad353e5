"""Can the configured cloud transport reach its endpoint? (`voxhome doctor`)

Opens a session the way the client does (the WebSocket handshake, or over WebRTC the client
secret, the SDP offer to the calls endpoint, ICE, DTLS and the `oai-events` channel) and closes it
at once. Over WebRTC the WebSocket is tried too when the call fails, because that is where turns
then go. Nothing secret is in the result: endpoints are shown without their query.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from device.cloud.connection import open_socket, websocket_url
from device.errors import CloudError
from device.settings import CloudSettings


@dataclass(frozen=True, slots=True)
class Reach:
    transport: str
    """The configured transport: websocket or webrtc."""
    endpoint: str
    error: CloudError | None = None
    fallback: CloudError | None = None
    """WebRTC failed: the WebSocket's result (None: it connected, so turns still reach the cloud)."""


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def _websocket(settings: CloudSettings) -> None:
    ws = await open_socket(settings)
    await ws.close()


async def _webrtc(settings: CloudSettings) -> None:
    from device.cloud.webrtc import open_webrtc  # aiortc loads only when WebRTC is used

    call = await open_webrtc(settings)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(call.close(), 2.0)


async def reach(settings: CloudSettings) -> Reach:
    if settings.transport == "webrtc":
        from device.cloud.webrtc import calls_url

        endpoint = _where(calls_url(settings))
        try:
            await _webrtc(settings)
            return Reach("webrtc", endpoint)
        except CloudError as err:
            try:
                await _websocket(settings)
                return Reach("webrtc", endpoint, err)
            except CloudError as fallback:
                return Reach("webrtc", endpoint, err, fallback)
    endpoint = _where(websocket_url(settings))
    try:
        await _websocket(settings)
    except CloudError as err:
        return Reach("websocket", endpoint, err)
    return Reach("websocket", endpoint)
