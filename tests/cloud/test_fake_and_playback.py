"""The fake server answers misuse with the documented error codes (as in errors-and-races), and
the reply player's jitter buffer and heard-audio accounting."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from device.cloud.fake_server import FakeRealtimeServer, Reply, load_transcript, tone
from device.cloud.playback import ReplyPlayer
from tests.cloud.conftest import EVENTS, PlaybackSink


def test_fake_server_error_codes_match_errors_and_races() -> None:
    script = [e for d, e in load_transcript(EVENTS / "errors-and-races.ga.jsonl") if d == "client"]
    expected = [e["error"]["code"] for d, e in load_transcript(EVENTS / "errors-and-races.ga.jsonl")
                if d == "server" and e["type"] == "error"]

    async def go() -> list[str]:
        codes: list[str] = []
        async with FakeRealtimeServer(replies=[Reply(audio_ms=1000, pace_ms=20), Reply(fail_code="inference_rate_limit_exceeded")]) as server:
            async with connect(server.url, proxy=None) as ws:
                await ws.recv()  # session.created

                async def drain(seconds: float) -> None:
                    deadline = asyncio.get_running_loop().time() + seconds
                    try:
                        while True:
                            left = deadline - asyncio.get_running_loop().time()
                            event = json.loads(await asyncio.wait_for(ws.recv(), max(left, 0.001)))
                            if event["type"] == "error":
                                codes.append(event["error"]["code"])
                            if event["type"] == "response.done" and event["response"]["status"] == "failed":
                                codes.append("failed:" + event["response"]["status_details"]["error"]["code"])
                    except TimeoutError:
                        pass

                for event in script[1:]:  # the first line is the valid session.update
                    await ws.send(json.dumps(event))
                    # the second response.create must race the first: don't wait for it to finish
                    await drain(0.05 if event.get("event_id") == "cli_err_005" else 0.3)
                    if event.get("event_id") == "cli_err_006":
                        await drain(1.0)
        return codes

    codes = asyncio.run(asyncio.wait_for(go(), 20))
    assert [c for c in codes if not c.startswith("failed:")] == expected
    assert codes[-1] == "failed:inference_rate_limit_exceeded"


def _delta(ms: int) -> bytes:
    return tone(ms)


def test_jitter_buffer_holds_the_first_60_ms_then_streams() -> None:
    sink = PlaybackSink()
    player = ReplyPlayer(sink, clock=lambda: 0.0, jitter_ms=60)
    player.delta("r1", "i1", _delta(40))
    assert sink.chunks == [] and player.first_sample_at is None
    player.delta("r1", "i1", _delta(40))
    assert player.started and len(sink.chunks) == 1
    player.delta("r1", "i1", _delta(40))
    assert len(sink.chunks) == 2  # streaming now, one chunk per delta
    player.finish_item("i1")
    assert abs(sink.queued_ms - 120) <= 1
    assert [c.timestamp_ms for c in sink.chunks] == sorted(c.timestamp_ms for c in sink.chunks)


def test_short_reply_is_flushed_when_its_audio_ends() -> None:
    sink = PlaybackSink()
    player = ReplyPlayer(sink, clock=lambda: 0.0, jitter_ms=200)
    player.delta("r1", "i1", _delta(40))
    player.finish_item("i1")
    assert abs(sink.queued_ms - 40) <= 1


def test_heard_is_clamped_per_item_and_to_received() -> None:
    sink = PlaybackSink(cap_ms=150)
    player = ReplyPlayer(sink, clock=lambda: 0.0, jitter_ms=0)
    for _ in range(2):
        player.delta("r1", "a", _delta(40))
    player.finish_item("a")
    for _ in range(5):
        player.delta("r1", "b", _delta(40))
    heard = player.stop()
    assert heard.played_ms == 150 and sink.stops == [150]
    # item a is 80 ms long, so 70 ms of item b were heard
    assert heard.item_id == "b" and abs(heard.audio_end_ms - 70) <= 1
    assert heard.response_ids == frozenset({"r1"})


def test_nothing_played_means_no_truncate() -> None:
    sink = PlaybackSink(cap_ms=0)
    player = ReplyPlayer(sink, clock=lambda: 0.0, jitter_ms=60)
    player.delta("r1", "a", _delta(40))  # still in the jitter buffer
    heard = player.stop()
    assert heard.item_id is None and heard.played_ms == 0 and sink.chunks == []

