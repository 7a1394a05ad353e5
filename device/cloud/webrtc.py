"""The realtime session over WebRTC (aiortc): Opus audio on RTP, events on the `oai-events` channel.

Opening (reference §6, §1.3): mint a client secret (`POST {base}/realtime/client_secrets` with the
API key) unless one is configured, create the data channel and the audio track, POST the SDP offer
to the calls endpoint (`{base}/realtime/calls`, 201 + SDP answer), and wait for the channel to open.
Every failure is a CloudError with the same codes as the WebSocket handshake (401/403 auth, 429
rate limited, 5xx http) plus `cloud-webrtc` for ICE or DTLS failing.

Audio up: the utterance is resampled to 48 kHz and paced onto the track in 20 ms frames,
`upload_speed` times real time: the route to the cloud is decided at the end of speech, so the
whole utterance is already buffered then, and sending it at the pace it was spoken would add its
own length to the reply's latency (reference §7.2: buffered audio may go out in a burst). Audio
down: decoded frames → 24 kHz → `AudioDelta` events for the same `ReplyPlayer` the WebSocket feeds.
Over WebRTC the server owns the play-out: `response.done` arrives while the reply is still
streaming in real time, and `output_audio_buffer.stopped` says when it ended. `media.ReplyOrder` puts
the events in the WebSocket's order (deltas, `audio.done`, then `response.done`) so the client's
turn logic is one and the same for both transports.

No sideband (reference §6: a server opening `wss://…/realtime?call_id=` with the API key to
handle tool calls while the client only streams media). That exists for clients that must not
hold the tools or the key; this device holds both and runs the tools itself on the home's MQTT,
so function calls and their outputs travel on its own data channel, confirmation rules included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import soxr
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from device.cloud import protocol as p
from device.cloud.connection import api_key
from device.cloud.media import FRAME_SAMPLES, RTP_RATE, PacedTrack, ReplyOrder
from device.cloud.transport import Frame, TransportClosed
from device.errors import CloudError
from device.settings import CloudSettings

log = logging.getLogger(__name__)

MAX_GAP_FRAMES = 10
"""A jump in the reply's RTP time up to this many frames is loss, concealed with silence; more is
a pause between replies."""
QUEUE_ITEMS = 4096
"""Frames waiting for the client; past it the peer is flooding us and the call is dropped."""
SECRET_TTL_S = 600
COMMIT_GUARD_S = 0.04
"""After a sped-up upload, wait this long before the commit (the data channel) may go: the last
frames reach the far end's buffer through its jitter buffer and decoder, and on the fake a commit
sent at once overtook up to 3 of them at 16-32x (none with 20 ms; this is twice that)."""


@dataclass
class _Http:
    status: int
    body: bytes
    location: str = ""


def _post(url: str, body: bytes, content_type: str, auth: str | None, timeout: float) -> _Http:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    if auth:
        request.add_header("Authorization", f"Bearer {auth}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our configured URL
            return _Http(response.status, response.read(1 << 20), response.headers.get("Location", ""))
    except urllib.error.HTTPError as err:
        return _Http(err.code, err.read(4096) if err.fp else b"")
    except TimeoutError:
        raise CloudError("cloud-timeout", f"no answer from {url} within {timeout:g} s") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise CloudError("cloud-unreachable", f"can't reach the WebRTC endpoint: {err}") from None


def _refused(what: str, status: int) -> CloudError:
    code = {401: "cloud-auth", 403: "cloud-auth", 429: "cloud-rate-limited"}.get(status)
    if code is None:
        code = "cloud-http" if status >= 500 else "cloud-session-rejected"
    return CloudError(code, f"the {what} endpoint refused with HTTP {status}")


def calls_url(settings: CloudSettings) -> str:
    return settings.calls_url or settings.base_url.rstrip("/") + "/realtime/calls"


async def client_secret(settings: CloudSettings) -> str | None:
    """The bearer for the calls endpoint: a configured secret, one minted from the API key, or none."""
    if settings.client_secret is not None:
        return settings.client_secret.reveal()
    key = api_key(settings)
    if key is None:
        if "openai.com" in calls_url(settings):
            raise CloudError("cloud-no-key", "no API key: set cloud.api_key or OPENAI_API_KEY")
        return None
    body = json.dumps({"expires_after": {"anchor": "created_at", "seconds": SECRET_TTL_S},
                       "session": {"type": "realtime", "model": settings.model}}).encode()
    url = settings.base_url.rstrip("/") + "/realtime/client_secrets"
    answer = await asyncio.to_thread(_post, url, body, "application/json", key, settings.connect_timeout_s)
    if answer.status != 200:
        raise _refused("client secret", answer.status)
    try:
        value = json.loads(answer.body)["value"]
    except (ValueError, KeyError, TypeError):
        raise CloudError("cloud-bad-event", "the client secret answer has no 'value'") from None
    if not isinstance(value, str):
        raise CloudError("cloud-bad-event", "the client secret answer has no 'value'")
    return value


def _resampler() -> Any:
    return soxr.ResampleStream(RTP_RATE, p.PCM_RATE, 1, dtype="int16", quality="HQ")


class WebRtcTransport:
    """One call: the peer connection, its `oai-events` channel and the two audio directions."""

    media = True
    name = "webrtc"

    def __init__(self, pc: RTCPeerConnection, channel: Any, track: PacedTrack) -> None:
        self.pc = pc
        self.channel = channel
        self.track = track
        self.order = ReplyOrder()
        self.gaps_ms = 0
        """Reply audio lost on the way (RTP time jumps), concealed with silence."""
        self._queue: asyncio.Queue[Frame | TransportClosed] = asyncio.Queue()
        self._closed: TransportClosed | None = None
        self._gone = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent = 0
        self._resampler = _resampler()
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._close_with(TransportClosed(None, "the data channel closed")))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _put(self, frame: Frame) -> None:
        if self._closed is not None:
            return
        if self._queue.qsize() > QUEUE_ITEMS:
            self._close_with(TransportClosed(1009, "the peer sent more than the client could take"))
            return
        self._queue.put_nowait(frame)

    def _close_with(self, closed: TransportClosed) -> None:
        if self._closed is None:
            self._closed = closed
            self._gone.set()
            self._queue.put_nowait(closed)

    def _on_message(self, message: str | bytes) -> None:
        if not isinstance(message, str):
            self._put(message)
            return
        frames, ended = self.order.on_frame(message)
        for frame in frames:
            self._put(frame)
        if ended is not None:
            self._spawn(self._end_audio(*ended))

    async def _end_audio(self, rid: str, tail: float) -> None:
        await asyncio.sleep(tail)
        # The resampler holds the reply's last few ms until more input comes: let them out now.
        rest = np.asarray(self._resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True), dtype="<i2")
        self._resampler = _resampler()
        delta = self.order.audio(rest.tobytes()) if len(rest) else None
        if delta is not None:
            self._put(delta)
        for frame in self.order.end(rid):
            self._put(frame)

    def receive(self, track: MediaStreamTrack) -> None:
        self._spawn(self._pull(track))

    async def _pull(self, track: MediaStreamTrack) -> None:
        """Remote audio → 24 kHz pcm16 deltas for whichever response is playing."""
        next_pts: int | None = None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            samples = frame.to_ndarray().reshape(-1)
            if frame.layout.name == "stereo":
                samples = samples.reshape(-1, 2).mean(axis=1).astype("<i2")
            pcm = np.asarray(samples, dtype="<i2")
            gap = 0 if next_pts is None or frame.pts is None else frame.pts - next_pts
            if frame.pts is not None:
                next_pts = frame.pts + frame.samples
            if 0 < gap <= MAX_GAP_FRAMES * FRAME_SAMPLES and self.order.playing is not None:
                pcm = np.concatenate([np.zeros(gap, dtype="<i2"), pcm])
                self.gaps_ms += gap * 1000 // RTP_RATE
            out = self._resampler.resample_chunk(pcm)
            delta = self.order.audio(np.asarray(out, dtype="<i2").tobytes()) if len(out) else None
            if delta is not None:
                self._put(delta)

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            item = await self._queue.get()
            if isinstance(item, TransportClosed):
                raise item
            yield item

    async def send(self, text: str) -> None:
        if self._closed is not None or self.channel.readyState != "open":
            raise self._closed or TransportClosed(None, "the data channel is not open")
        self.channel.send(text)
        self._sent += len(text)

    async def send_audio(self, pcm16k: bytes, speed: float = 1.0) -> None:
        if self._closed is not None:
            raise self._closed
        self.track.push(pcm16k, 16000, speed)
        # Until it has gone out, or the call is gone (a failed call stops pulling frames).
        waits = [asyncio.ensure_future(self.track.drained()), asyncio.ensure_future(self._gone.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if self._closed is not None:
            raise self._closed
        if speed > 1.0:
            await asyncio.sleep(COMMIT_GUARD_S)

    async def sent_bytes(self) -> int:
        rtp = 0
        for sender in self.pc.getSenders():
            stats = await sender.getStats()
            rtp += sum(getattr(s, "bytesSent", 0) or 0 for s in stats.values() if getattr(s, "type", "") == "outbound-rtp")
        return rtp + self._sent

    async def close(self) -> None:
        self._close_with(TransportClosed(1000, "closed by the client"))
        self.track.stop()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 2.0)


async def open_webrtc(settings: CloudSettings) -> WebRtcTransport:
    """Offer, POST, answer, wait for the channel; every failure is a CloudError."""
    bearer = await client_secret(settings)
    # No STUN server: the call's far end is public (or on loopback), host candidates reach it,
    # and aiortc's default (a public STUN server) would be a lookup on every call.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        return await asyncio.wait_for(_negotiate(pc, settings, bearer), settings.connect_timeout_s)
    except TimeoutError:
        await pc.close()
        raise CloudError("cloud-webrtc", f"the WebRTC call did not connect within {settings.connect_timeout_s:g} s (ICE/DTLS)") from None
    except BaseException:
        await pc.close()
        raise


async def _negotiate(pc: RTCPeerConnection, settings: CloudSettings, bearer: str | None) -> WebRtcTransport:
    channel = pc.createDataChannel("oai-events")
    track = PacedTrack()
    pc.addTrack(track)
    transport = WebRtcTransport(pc, channel, track)
    opened = asyncio.Event()
    failed = asyncio.Event()
    channel.on("open", opened.set)
    pc.on("track", transport.receive)

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState in ("failed", "closed"):
            failed.set()
            transport._close_with(TransportClosed(None, f"the WebRTC connection {pc.connectionState}"))

    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp.encode()
    answer = await asyncio.to_thread(_post, calls_url(settings), offer, "application/sdp", bearer, settings.connect_timeout_s)
    if answer.status not in (200, 201):
        raise _refused("calls", answer.status)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(answer.body.decode(), "answer"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CloudError("cloud-webrtc", f"the calls endpoint answered with a bad SDP: {err}") from None
    waits = [asyncio.ensure_future(opened.wait()), asyncio.ensure_future(failed.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
    if not opened.is_set():
        raise CloudError("cloud-webrtc", "the WebRTC connection failed (ICE or DTLS)")
    log.info("cloud WebRTC call up (%s)", answer.location or "no call id")
    return transport
