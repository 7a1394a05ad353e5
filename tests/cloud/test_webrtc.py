"""The cloud over WebRTC on the real stacks: aiortc on both ends (the device's client and the fake
realtime server's calls endpoint), Opus over RTP and the `oai-events` data channel, on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from device.bench.cloud_links import LinkResult, PlayoutSink, _condition
from device.cloud import protocol as p
from device.cloud.confirmation import SpokenConfirmation
from device.cloud.fake_server import FakeRealtimeServer, Impairment, Reply
from device.cloud.media import ReplyOrder
from device.cloud.realtime import CloudOutcome, RealtimeClient
from device.events import AudioChunk
from device.settings import Secret
from tests.cloud.conftest import HomeTools, PlaybackSink, no_sleep, settings, speech

T = TypeVar("T")
UNLOCK = ("control_device", '{"entity_id": "lock.front_door", "action": "unlock"}')
KITCHEN_ON = ("control_device", '{"entity_id": "light.kitchen", "action": "turn_on"}')


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


def webrtc_client(server: FakeRealtimeServer, sink: PlaybackSink, tools: Any = None, **kw: Any) -> RealtimeClient:
    # A call takes ~0.3 s to set up; the margin is for a loaded CI machine.
    kw = {"connect_timeout_s": 5.0, **kw}
    cfg = settings(server.url, base_url=server.base_url, transport="webrtc", retries=0, **kw)
    return RealtimeClient(cfg, tools or HomeTools(), sink, sleep=no_sleep)


def types(server: FakeRealtimeServer) -> list[str]:
    return [e["type"] for e in server.received]


def energy(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if len(audio) else 0.0


def test_a_turn_streams_opus_both_ways_and_plays_the_reply(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-test\n")
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, FakeRealtimeServer, str]:
        async with FakeRealtimeServer(webrtc=True, api_key="sk-test", replies=[Reply(text="Hello there.", audio_ms=800)]) as server:
            client = webrtc_client(server, sink, api_key=Secret(file=str(key)))
            outcome = await client.turn(speech(600))
            name = client._ws.name if client._ws is not None else "closed"
            await client.close()
        return outcome, server, name

    outcome, server, name = run(go())
    assert name == "webrtc" and outcome.fell_back is None
    assert outcome.status == "ok" and outcome.reply_text == "Hello there."
    # The whole reply, decoded from Opus, reached the speaker (plus the fake's trailing silence).
    assert 760 <= outcome.played_ms <= 1060
    assert energy(sink.audio[: 16 * 700]) > 2000  # a tone, not silence
    # Upstream the utterance went on the track, not as base64 events.
    assert "input_audio_buffer.append" not in types(server)
    assert server.calls.media_ms >= 600
    assert types(server)[-2:] == ["input_audio_buffer.commit", "response.create"]
    # The calls endpoint saw a minted client secret, never the API key.
    call_auth = [h["authorization"] for h in server.headers if "content-type" in h and "sdp" in h["content-type"]]
    assert call_auth == ["Bearer ek_FAKE_1"]


def test_barge_in_stops_at_once_and_clears_the_servers_playout() -> None:
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, FakeRealtimeServer, int, int]:
        async with FakeRealtimeServer(webrtc=True, replies=[Reply(text="A long story.", audio_ms=4000)]) as server:
            client = webrtc_client(server, sink)
            playing = asyncio.Event()
            sink.on_play = lambda s: playing.set() if s.queued_ms >= 400 else None
            task = asyncio.create_task(client.turn(speech(300)))
            await playing.wait()
            heard = await client.interrupt()
            outcome = await task
            after_stop = len(sink.chunks)
            await asyncio.sleep(0.4)  # audio still in flight must not reach the speaker
            late = len(sink.chunks) - after_stop
            await client.close()
        return outcome, server, heard, late

    outcome, server, heard, late = run(go())
    assert outcome.status == "interrupted" and 400 <= heard < 1500
    assert late == 0
    sent = types(server)
    assert "response.cancel" in sent and "output_audio_buffer.clear" in sent
    truncate = next(e for e in server.received if e["type"] == "conversation.item.truncate")
    assert 0 < truncate["audio_end_ms"] <= heard


def test_tool_calls_go_through_the_same_confirmation_rules() -> None:
    home = HomeTools()
    tools = SpokenConfirmation(home)

    async def go() -> tuple[CloudOutcome, CloudOutcome, FakeRealtimeServer]:
        replies = [Reply(calls=(KITCHEN_ON, UNLOCK)), Reply(text="Do you want me to unlock it?"),
                   Reply(calls=(UNLOCK,)), Reply(text="Unlocked.")]
        async with FakeRealtimeServer(webrtc=True, replies=replies) as server:
            client = webrtc_client(server, PlaybackSink(), tools)
            first = await client.turn(speech(300))
            assert home.state["lock.front_door"] == "locked"  # not without the spoken yes
            assert tools.answer(True) == "approved"
            second = await client.turn(speech(300))
            await client.close()
        return first, second, server

    first, second, server = run(go())
    assert [(r.name, r.status) for r in first.tool_results] == [("control_device", "ok"), ("control_device", "needs_confirmation")]
    assert [r.status for r in second.tool_results] == ["ok"]  # HomeTools says ok only when confirmed
    assert home.state["light.kitchen"] == "on"
    outputs = [json.loads(e["item"]["output"]) for e in server.received
               if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]
    assert outputs[1]["needs_confirmation"] is True and outputs[2]["ok"] is True
    assert server.connections == 1  # one call carried both turns


@pytest.mark.parametrize(("fault", "code"), [
    ({"webrtc_fault": "dtls"}, "cloud-webrtc"),
    ({"webrtc_fault": "ice"}, "cloud-webrtc"),
    ({"calls_status": 401}, "cloud-auth"),
    ({"calls_status": 429}, "cloud-rate-limited"),
    ({"calls_status": 503}, "cloud-http"),
])
def test_a_call_that_does_not_connect_falls_back_to_the_websocket(fault: dict[str, Any], code: str) -> None:
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, CloudOutcome, str, str]:
        async with FakeRealtimeServer(webrtc=True, replies=[Reply(text="Over the socket.", audio_ms=300)], **fault) as server:
            client = webrtc_client(server, sink, connect_timeout_s=1.5)
            outcome = await client.turn(speech(300))
            during = client._ws.name if client._ws is not None else "closed"
            await client.close()
            # The fallback lasts as long as its session: the next session tries WebRTC again.
            server.replies.append(Reply(text="Again."))
            again = await client.turn(speech(300))
            await client.close()
        return outcome, again, during, ",".join(types(server))

    outcome, again, during, _ = run(go())
    assert outcome.status == "ok" and outcome.reply_text == "Over the socket." and outcome.fell_back == code
    assert during == "websocket" and outcome.prompt is None
    assert 280 <= outcome.played_ms <= 340  # played once
    assert again.fell_back == code  # WebRTC was tried again, and fell back again


def test_the_data_channel_closing_before_any_audio_falls_back_and_plays_once() -> None:
    sink = PlaybackSink()

    async def go() -> CloudOutcome:
        replies = [Reply(text="Lost.", audio_ms=600, drop_after=0), Reply(text="Second try.", audio_ms=500)]
        async with FakeRealtimeServer(webrtc=True, replies=replies) as server:
            client = webrtc_client(server, sink)
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome

    outcome = run(go())
    assert outcome.status == "ok" and outcome.reply_text == "Second try." and outcome.fell_back == "cloud-dropped"
    assert 480 <= sink.queued_ms <= 540  # only the second reply, once


def test_the_channel_closing_mid_reply_is_not_retried_and_the_speaker_says_so() -> None:
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, int]:
        # Paced like a live model, so audio has been heard when the channel closes.
        replies = [Reply(text="Half a story.", audio_ms=3000, pace_ms=40, drop_after=20), Reply(text="Never asked for.")]
        async with FakeRealtimeServer(webrtc=True, replies=replies) as server:
            client = webrtc_client(server, sink)
            outcome = await client.turn(speech(300))
            await client.close()
            calls = server.connections
        return outcome, calls

    outcome, calls = run(go())
    # Reply audio had been heard: asking again over the socket would play an answer twice.
    assert outcome.status == "failed" and outcome.code == "cloud-dropped" and outcome.prompt == "cloud_dropped"
    assert outcome.fell_back is None and calls == 1
    assert 0 < sink.queued_ms < 3000


def test_when_the_websocket_fails_too_the_turn_ends_locally() -> None:
    async def go() -> CloudOutcome:
        async with FakeRealtimeServer(webrtc=True, calls_status=500, reject_status=503) as server:
            client = webrtc_client(server, PlaybackSink())
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome

    outcome = run(go())
    assert outcome.status == "failed" and outcome.fell_back == "cloud-http"
    assert outcome.code == "cloud-http" and outcome.prompt == "cloud_unreachable"


def test_lost_reply_packets_are_concealed_not_dropped() -> None:
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, int, int]:
        impaired = Impairment(loss=0.1, jitter_ms=10, rtt_ms=100, seed=3)
        async with FakeRealtimeServer(webrtc=True, impairment=impaired, replies=[Reply(text="Crackly.", audio_ms=1000)]) as server:
            client = webrtc_client(server, sink)
            outcome = await client.turn(speech(300))
            gaps = client.concealed_ms
            await client.close()
            lost = server.calls.tracks[0].lost
        return outcome, gaps, lost

    outcome, gaps, lost = run(go())
    assert outcome.status == "ok" and lost >= 2
    # Every lost frame became 20 ms of silence, so the reply keeps its time (a sender that
    # wakes late under load may add a frame or two of its own).
    assert lost * 20 <= gaps <= lost * 20 + 60
    assert 1000 <= outcome.played_ms <= 1250


def test_sim_cloud_answers_webrtc_calls_as_a_subprocess() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "device", "sim", "cloud", "--port", "0", "--webrtc", "--tool", "",
                             "--say", "Over the call.", "--audio-ms", "400", "--rtt-ms", "40"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        cfg = settings(hello["url"], base_url=hello["base_url"], transport="webrtc", connect_timeout_s=10.0)

        async def go() -> CloudOutcome:
            client = RealtimeClient(cfg, HomeTools(), PlaybackSink(), sleep=no_sleep)
            outcome = await client.turn(speech(300))
            await client.close()
            return outcome

        outcome = run(go())
        assert outcome.status == "ok" and outcome.reply_text == "Over the call." and outcome.fell_back is None
        assert 380 <= outcome.played_ms <= 620  # the reply, then the fake's trailing silence (160 ms)
    finally:
        proc.terminate()
        proc.wait(10)


def test_playout_sink_counts_only_audible_late_audio() -> None:
    sink = PlayoutSink()
    tone = (np.sin(np.arange(320) / 3) * 8000).astype("<i2").tobytes()
    sink.play(AudioChunk(tone))
    time.sleep(0.08)  # 20 ms queued, 80 ms waited: ~60 ms with nothing to play
    sink.play(AudioChunk(bytes(640)))  # late silence is not heard as a gap
    assert sink.gaps_ms == 0
    time.sleep(0.05)
    sink.play(AudioChunk(tone))
    assert 25 <= sink.gaps_ms <= 90


def test_the_link_benchmark_measures_both_transports_on_one_link() -> None:
    async def go() -> list[LinkResult]:
        return [await _condition(t, 0.05, 50.0, 1, 600) for t in ("websocket", "webrtc")]

    ws, rtc = run(go())
    assert ws.fell_back == rtc.fell_back == 0
    # PCM as base64 JSON vs Opus: the point of WebRTC for a device on Wi-Fi.
    assert ws.upstream_bytes_per_s > 3 * rtc.upstream_bytes_per_s > 0
    # The utterance goes out in real time over RTP, in a burst over the socket.
    assert rtc.first_sample_ms > 600 > ws.first_sample_ms


def test_reply_order_holds_a_completed_response_until_its_audio_ends() -> None:
    order = ReplyOrder()

    def msg(kind: str, **fields: Any) -> str:
        return json.dumps({"type": kind, **fields})

    item = msg("response.output_item.added", response_id="r1", item={"id": "i1", "type": "message"})
    assert order.on_frame(item) == ([item], None)
    assert order.audio(b"\0\0") is None  # nothing is playing yet: the track's silence is dropped
    order.on_frame(msg("output_audio_buffer.started", response_id="r1"))
    assert order.audio(b"\1\0") == p.AudioDelta("r1", "i1", b"\1\0")
    assert order.on_frame(msg("response.output_audio.done", response_id="r1", item_id="i1")) == ([], None)
    done = msg("response.done", response={"id": "r1", "status": "completed"})
    assert order.on_frame(done) == ([], None)  # held: the reply is still streaming in
    stopped = msg("output_audio_buffer.stopped", response_id="r1")
    assert order.on_frame(stopped) == ([stopped], ("r1", pytest.approx(0.06)))
    assert order.end("r1") == [p.AudioDone("r1", "i1"), done]
    assert order.audio(b"\1\0") is None and order.end("r1") == []
    # A cancelled response is not held (its audio is cleared, not played out).
    order.on_frame(msg("output_audio_buffer.started", response_id="r2"))
    cancelled = msg("response.done", response={"id": "r2", "status": "cancelled"})
    assert order.on_frame(cancelled) == ([cancelled], None)


def test_a_data_channel_flood_is_bounded_and_the_turn_still_answers() -> None:
    flood = json.dumps({"type": "x.flood", "pad": "a" * 200})

    async def go() -> tuple[CloudOutcome, int]:
        async with FakeRealtimeServer(webrtc=True, replies=[Reply(flood=flood), Reply(text="Over the socket.")]) as server:
            client = webrtc_client(server, PlaybackSink())
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome, server.connections

    outcome, connections = run(go())
    # Events that don't carry the turn can't hold it open (inactivity deadline), nor fill memory
    # (the reader stops, then the transport drops the call past QUEUE_ITEMS).
    assert outcome.fell_back in ("cloud-timeout", "cloud-bad-event")
    assert outcome.status == "ok" and outcome.reply_text == "Over the socket." and connections == 2


def test_a_call_hung_up_during_the_upload_falls_back_at_once() -> None:
    sink = PlaybackSink()

    async def go() -> tuple[CloudOutcome, float]:
        async with FakeRealtimeServer(webrtc=True, replies=[Reply(text="Over the socket.", audio_ms=300)]) as server:
            client = webrtc_client(server, sink, upload_speed=1.0)
            await client.connect()
            start = time.monotonic()
            task = asyncio.create_task(client.turn(speech(3000)))  # 3 s of upload at real time
            await asyncio.sleep(0.5)
            await server.calls.stop()  # the far end goes away mid-utterance
            outcome = await task
            took = time.monotonic() - start
            await client.close()
        return outcome, took

    outcome, took = run(go())
    assert outcome.status == "ok" and outcome.reply_text == "Over the socket." and outcome.fell_back == "cloud-dropped"
    assert took < 2.5  # not after the whole utterance, let alone a deadline
