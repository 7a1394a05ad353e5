"""`voxhome bench cloud`: the cloud client's own latency against a fake server that answers at once.

Per turn, on loopback with a real WebSocket:
- end of speech → first reply sample handed to the sink (target ≤ 60 ms): includes resampling the
  utterance, the appends, commit, response.create, the server, the jitter buffer, resampling back;
- the server's first audio delta → the sink (≤ 15 ms): the receive path alone;
- barge-in: wake word (posted from another thread, as the front end does) → sink.stop() (≤ 50 ms),
  measured while a paced reply is streaming.
The peer in the same run is the floor: a bare WebSocket round trip of an event of the same size
on the same loop, so the numbers read as "our overhead over the transport".

`--transport websocket,webrtc` adds the transport as a dimension (`cloud_links.py`): the same
turns over each transport at 0/2/5 % loss and 50/150 ms RTT, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from device.cloud.fake_server import FakeRealtimeServer, Reply
from device.cloud.realtime import RealtimeClient
from device.events import AudioChunk, ToolCall, ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolSpec

TARGETS = {"speech_end_to_sink_ms": 60.0, "delta_to_sink_ms": 15.0, "barge_in_stop_ms": 50.0}


class _TimingSink:
    def __init__(self) -> None:
        self.queued_ms = 0.0
        self.stopped_at: float | None = None
        self.playing = asyncio.Event()
        """Set once 300 ms of reply are queued: the moment the barge-in benchmark wakes up."""

    def play(self, chunk: AudioChunk) -> None:
        self.queued_ms += chunk.duration_ms
        if self.queued_ms >= 300:
            self.playing.set()

    def flush(self) -> None:
        pass

    def stop(self) -> int:
        self.stopped_at = time.perf_counter()
        played, self.queued_ms = int(self.queued_ms), 0.0
        return played

    @property
    def played_ms(self) -> int:
        return int(self.queued_ms)

    def stop_time(self) -> float | None:
        return self.stopped_at

    def close(self) -> None:
        pass


class _NoTools:
    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        return ToolResult(call.call_id, call.name, "error", {}, "no tools in the benchmark")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--turns", type=int, default=40, help="turns per measurement (≥ 30 for the report)")
    parser.add_argument("--utterance-ms", type=int, default=1500, help="length of each spoken request")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--transport", metavar="LIST",
                        help="compare transports (comma-separated: websocket,webrtc) on impaired links")
    parser.add_argument("--link-turns", type=int, default=5, help="turns per transport and link condition")
    parser.add_argument("--upload-speeds", metavar="LIST", default=f"1,{CloudSettings().upload_speed:g}",
                        help="WebRTC upload speeds to compare (× real time; default: 1 and the configured one)")


def _utterance(ms: int) -> bytes:
    t = np.arange(ms * 16) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


async def _latency(turns: int, utterance_ms: int) -> dict[str, list[float]]:
    speech = _utterance(utterance_ms)
    sink = _TimingSink()
    async with FakeRealtimeServer(replies=[Reply(audio_ms=600)], cycle=True) as server:
        settings = CloudSettings(url=server.url, idle_close_s=600.0)
        client = RealtimeClient(settings, _NoTools(), sink, clock=time.perf_counter)
        start = time.perf_counter()
        await client.connect()
        connect_ms = (time.perf_counter() - start) * 1000
        end_to_sink, delta_to_sink = [], []
        for _ in range(turns + 1):
            end_of_speech = time.perf_counter()
            outcome = await client.turn(speech)
            if outcome.status != "ok" or client.first_sample_at is None:
                raise RuntimeError(f"benchmark turn failed: {outcome}")
            end_to_sink.append((client.first_sample_at - end_of_speech) * 1000)
            delta_to_sink.append((client.first_sample_at - server.first_delta_sent[-1]) * 1000)
            sink.stop()
        await client.close()
    # the first turn pays one-off costs (soxr plans, imports); report warm turns
    return {"speech_end_to_sink_ms": end_to_sink[1:], "delta_to_sink_ms": delta_to_sink[1:], "connect_ms": [connect_ms]}


async def _barge_in(turns: int) -> list[float]:
    sink = _TimingSink()
    out: list[float] = []
    loop = asyncio.get_running_loop()
    async with FakeRealtimeServer(replies=[Reply(audio_ms=4000, pace_ms=5)], cycle=True) as server:
        client = RealtimeClient(CloudSettings(url=server.url, idle_close_s=600.0), _NoTools(), sink, clock=time.perf_counter)
        for _ in range(turns):
            sink.stopped_at = None
            sink.playing.clear()
            task = asyncio.create_task(client.turn(_utterance(500)))
            await sink.playing.wait()
            woke: list[float] = []
            threading.Thread(target=_wake, args=(loop, client, woke)).start()
            outcome = await task
            stopped = sink.stop_time()
            if outcome.status != "interrupted" or stopped is None:
                raise RuntimeError(f"barge-in turn did not stop: {outcome}")
            out.append((stopped - woke[0]) * 1000)
        await client.close()
    return out


def _wake(loop: asyncio.AbstractEventLoop, client: RealtimeClient, woke: list[float]) -> None:
    """The front end's thread reporting a wake word to the event loop."""
    woke.append(time.perf_counter())
    loop.call_soon_threadsafe(lambda: asyncio.ensure_future(client.interrupt()))


async def _floor(turns: int) -> list[float]:
    """Peer: a bare WebSocket echo of one audio-delta-sized event on the same machine."""
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    payload = json.dumps({"type": "response.output_audio.delta", "delta": "A" * 2560})
    out = []
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None, proxy=None) as ws:
            for _ in range(turns):
                start = time.perf_counter()
                await ws.send(payload)
                json.loads(await ws.recv())
                out.append((time.perf_counter() - start) * 1000)
    return out


def run(args: argparse.Namespace) -> int:
    if args.turns < 1:
        sys.stderr.write("--turns must be at least 1\n")
        return 2
    if args.transport is not None:
        return _links(args)
    results: dict[str, Any] = asyncio.run(_latency(args.turns, args.utterance_ms))
    results["barge_in_stop_ms"] = asyncio.run(_barge_in(args.turns))
    results["peer_ws_round_trip_ms"] = asyncio.run(_floor(args.turns))
    medians = {k: round(statistics.median(v), 2) for k, v in results.items()}
    missed = [k for k, limit in TARGETS.items() if medians[k] > limit]
    out = sys.stdout.write
    if args.json:
        out(json.dumps({"turns": args.turns, "medians_ms": medians, "targets_ms": TARGETS, "missed": missed}) + "\n")
    else:
        out(f"cloud client on loopback, fake server answering at once, median of {args.turns} turns\n")
        for key, value in medians.items():
            target = f"(target <= {TARGETS[key]:g})" if key in TARGETS else ""
            out(f"  {key:<24} {value:8.2f} ms {target}\n")
        out("  all targets met\n" if not missed else f"  MISSED: {', '.join(missed)}\n")
    return 1 if missed else 0


def _links(args: argparse.Namespace) -> int:
    from device.bench import cloud_links  # aiortc loads only for this comparison

    transports = [t.strip() for t in args.transport.split(",") if t.strip()]
    try:
        speeds = tuple(dict.fromkeys(float(s) for s in args.upload_speeds.split(",") if s.strip()))
    except ValueError:
        speeds = ()
    if not transports or set(transports) - {"websocket", "webrtc"} or args.link_turns < 1:
        sys.stderr.write("--transport takes websocket and/or webrtc, and --link-turns at least 1\n")
        return 2
    if not speeds or not all(1.0 <= s <= 32.0 for s in speeds):
        sys.stderr.write("--upload-speeds takes numbers from 1 to 32, comma-separated\n")
        return 2
    results = asyncio.run(cloud_links.compare(transports, args.link_turns, args.utterance_ms, speeds))
    if args.json:
        sys.stdout.write(json.dumps({"turns": args.link_turns, "utterance_ms": args.utterance_ms,
                                     "links": cloud_links.as_json(results)}) + "\n")
    else:
        sys.stdout.write(cloud_links.report(results, args.link_turns, args.utterance_ms))
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m device.bench.cloud")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
