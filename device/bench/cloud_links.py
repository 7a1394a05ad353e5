"""`voxhome bench cloud --transport websocket,webrtc`: the transports side by side on impaired links.

Every transport runs the same turns against the same fake (`FakeRealtimeServer`, aiortc on its
side for WebRTC) at each loss × RTT condition, in one run:
- end of speech → first reply sample at the speaker (the turn starts with the whole utterance:
  the route is decided at the end of speech); WebRTC once per upload speed, so `×1` (the
  utterance paced as spoken) is the peer of the sped-up upload in the same run;
- upstream bytes per second of utterance (WebSocket: the JSON text frames; WebRTC: RTP payload
  plus data-channel text; neither counts TCP/UDP/IP or DTLS overhead);
- reply gaps: ms per second of reply the speaker had nothing to play (underruns against a
  real-time play-out clock) plus, over WebRTC, lost frames concealed with silence.
The link model is `device/cloud/fake_link.py` (over TCP, loss is a late resend that blocks what
follows; over RTP, a frame never sent). The fake generates its reply faster than real time, as
the service does; over WebRTC its track paces it out.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.cloud.fake_server import FakeRealtimeServer, Impairment, Reply
from device.cloud.realtime import RealtimeClient
from device.events import AudioChunk, ToolCall, ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolSpec

CONDITIONS = ((0.0, 50.0), (0.02, 50.0), (0.05, 50.0), (0.0, 150.0), (0.02, 150.0), (0.05, 150.0))
"""(loss fraction, RTT ms)."""
REPLY_MS = 1000


class PlayoutSink:
    """An AudioSink that plays in real time: what has been heard follows the wall clock, and a
    chunk that arrives after the queue ran dry counts the wait as a gap."""

    def __init__(self) -> None:
        self._end: float | None = None
        self._queued_ms = 0.0
        self.gaps_ms = 0.0

    def play(self, chunk: AudioChunk) -> None:
        now = time.perf_counter()
        if self._end is None:
            self._end = now
        elif now > self._end:
            if _audible(chunk):  # silence that comes late (a resampler's tail) is not heard as a gap
                self.gaps_ms += (now - self._end) * 1000
            self._end = now
        self._end += chunk.duration_ms / 1000
        self._queued_ms += chunk.duration_ms

    def flush(self) -> None:
        pass

    def stop(self) -> int:
        played = self.played_ms
        self._end, self._queued_ms = None, 0.0
        return played

    @property
    def played_ms(self) -> int:
        if self._end is None:
            return 0
        return int(self._queued_ms - max(0.0, self._end - time.perf_counter()) * 1000)

    def close(self) -> None:
        pass


def _audible(chunk: AudioChunk) -> bool:
    samples = np.frombuffer(chunk.audio, dtype="<i2").astype(np.float64)
    return len(samples) > 0 and float(np.sqrt(np.mean(samples**2))) > 100


class _NoTools:
    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        return ToolResult(call.call_id, call.name, "error", {}, "no tools in the benchmark")


@dataclass(frozen=True, slots=True)
class LinkResult:
    transport: str
    """websocket, or webrtc×<upload speed>."""
    loss: float
    rtt_ms: float
    first_sample_ms: float
    upstream_bytes_per_s: float
    gaps_ms_per_s: float
    fell_back: int


def _utterance(ms: int) -> bytes:
    t = np.arange(ms * 16) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


async def _condition(transport: str, loss: float, rtt: float, turns: int, utterance_ms: int,
                     upload_speed: float = 1.0) -> LinkResult:
    impairment = Impairment(loss=loss, jitter_ms=10.0 if loss else 0.0, rtt_ms=rtt, seed=7)
    speech = _utterance(utterance_ms)
    firsts, rates, gaps = [], [], []
    fell_back = 0
    async with FakeRealtimeServer(webrtc=transport == "webrtc", impairment=impairment, cycle=True,
                                  replies=[Reply(text="A reply.", audio_ms=REPLY_MS)]) as server:
        base = server.base_url if transport == "webrtc" else "https://api.invalid/v1"
        settings = CloudSettings(url=server.url, base_url=base, transport=transport,  # type: ignore[arg-type]
                                 idle_close_s=600.0, retries=0, upload_speed=upload_speed)
        sink = PlayoutSink()
        client = RealtimeClient(settings, _NoTools(), sink, clock=time.perf_counter)
        await client.connect()  # connecting is not part of a turn here
        for turn in range(turns + 1):
            sent, concealed, sink.gaps_ms = await client.upstream_bytes(), client.concealed_ms, 0.0
            start = time.perf_counter()
            outcome = await client.turn(speech)
            if outcome.status != "ok" or client.first_sample_at is None:
                raise RuntimeError(f"benchmark turn failed over {transport}: {outcome}")
            rate = (await client.upstream_bytes() - sent) / (utterance_ms / 1000)
            lost = client.concealed_ms - concealed
            sink.stop()
            if turn == 0:
                continue  # the first turn pays one-off costs (codec set-up, soxr plans)
            fell_back += outcome.fell_back is not None
            firsts.append((client.first_sample_at - start) * 1000)
            rates.append(rate)
            gaps.append((sink.gaps_ms + lost) / (REPLY_MS / 1000))
        await client.close()
    name = f"webrtc×{upload_speed:g}" if transport == "webrtc" else transport
    return LinkResult(name, loss, rtt, statistics.median(firsts), statistics.median(rates),
                      statistics.mean(gaps), fell_back)


async def compare(transports: list[str], turns: int, utterance_ms: int,
                  upload_speeds: tuple[float, ...] = (1.0,)) -> list[LinkResult]:
    out = []
    for loss, rtt in CONDITIONS:
        for transport in transports:
            for speed in upload_speeds if transport == "webrtc" else (1.0,):
                out.append(await _condition(transport, loss, rtt, turns, utterance_ms, speed))
    return out


def report(results: list[LinkResult], turns: int, utterance_ms: int) -> str:
    lines = [f"transports on impaired loopback links: median of {turns} turns, {utterance_ms} ms utterance, "
             f"{REPLY_MS} ms reply",
             f"  {'transport':<11} {'loss':>5} {'rtt':>6} {'speech end→first sample':>24} {'upstream B/s':>13} "
             f"{'gap ms/s':>9}"]
    for r in results:
        note = f"  ({r.fell_back} fell back)" if r.fell_back else ""
        lines.append(f"  {r.transport:<11} {r.loss:>5.0%} {r.rtt_ms:>4.0f}ms {r.first_sample_ms:>21.0f} ms "
                     f"{r.upstream_bytes_per_s:>13.0f} {r.gaps_ms_per_s:>9.1f}{note}")
    return "\n".join(lines) + "\n"


def as_json(results: list[LinkResult]) -> list[dict[str, Any]]:
    return [{"transport": r.transport, "loss": r.loss, "rtt_ms": r.rtt_ms, "first_sample_ms": round(r.first_sample_ms, 1),
             "upstream_bytes_per_s": round(r.upstream_bytes_per_s), "gaps_ms_per_s": round(r.gaps_ms_per_s, 1),
             "fell_back": r.fell_back} for r in results]
