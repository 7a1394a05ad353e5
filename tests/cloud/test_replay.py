"""Every WebSocket flow in realtime-events/, replayed by the fake server over a real socket.

The fake server waits for each client line of the transcript and records any difference (type,
item/call/response ids, audio_end_ms, function outputs), so an empty `mismatches` means our client
sent what a correct client sends, in order, in that dialect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
import pytest

from device.cloud.fake_server import FakeRealtimeServer, load_transcript
from device.cloud.realtime import RealtimeClient
from tests.cloud.conftest import EVENTS, HomeTools, PlaybackSink, make_client, speech

T = TypeVar("T")
DIALECTS = ["ga", "beta"]


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


def client_types(server: FakeRealtimeServer) -> list[str]:
    return [e["type"] for e in server.received if e["type"] not in ("input_audio_buffer.append", "input_audio_buffer.clear")]


def expected_types(name: str) -> list[str]:
    return [e["type"] for d, e in load_transcript(EVENTS / name)
            if d == "client" and e["type"] not in ("input_audio_buffer.append", "input_audio_buffer.clear")]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_push_to_talk(dialect: str) -> None:
    name = f"push-to-talk.{dialect}.jsonl"

    async def go() -> tuple[Any, FakeRealtimeServer, PlaybackSink]:
        sink = PlaybackSink()
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, sink, dialect=dialect)
            outcome = await client.turn(speech(400))
            await client.close()
        return outcome, server, sink

    outcome, server, sink = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    assert outcome.status == "ok" and outcome.prompt is None
    assert outcome.reply_text == "I can switch your lights, locks and covers, and answer questions."
    assert outcome.user_text == "What can you do?"
    assert outcome.followup_s == 4.0
    # 4 deltas x 40 ms at 24 kHz come out as ~160 ms at 16 kHz, all handed to the sink.
    assert all(c.rate == 16000 for c in sink.chunks)
    assert abs(sink.queued_ms - 160) <= 2
    appends = [e for e in server.received if e["type"] == "input_audio_buffer.append"]
    assert len(appends) == 4  # 400 ms of 16 kHz speech → 4 x 100 ms at 24 kHz
    assert all(len(a["audio"]) == 6400 for a in appends)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("flow", ["function-call", "function-call-parallel"])
def test_function_calls(flow: str, dialect: str) -> None:
    name = f"{flow}.{dialect}.jsonl"
    tools = HomeTools(failing=frozenset({"light.living_room"}))

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, tools=tools, dialect=dialect)
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome, server

    outcome, server = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    assert outcome.status == "ok"
    calls = [(c.name, c.arguments["entity_id"], c.source) for c in tools.executed]
    if flow == "function-call":
        assert calls == [("control_device", "light.kitchen", "cloud")]
        assert tools.state["light.kitchen"] == "on"
    else:
        assert [c[1] for c in calls] == ["light.kitchen", "light.living_room"]
        assert [r.status for r in outcome.tool_results] == ["ok", "error"]
    # exactly one response.create after the outputs, not one per call
    types = client_types(server)
    assert types.count("response.create") == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_barge_in_client(dialect: str) -> None:
    """Wake word during the reply: stop, cancel, truncate at what was heard (80 ms), new turn."""
    name = f"barge-in-client.{dialect}.jsonl"

    async def go() -> tuple[Any, Any, FakeRealtimeServer, PlaybackSink, int]:
        sink = PlaybackSink(cap_ms=80)
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, sink, dialect=dialect)
            heard: list[int] = []

            def wake(s: PlaybackSink) -> None:
                if not heard and s.queued_ms >= 150:
                    heard.append(-1)
                    asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(barge()))

            async def barge() -> None:
                heard[0] = await client.interrupt()

            sink.on_play = wake
            first = await client.turn(speech(200))
            sink.on_play, sink.cap_ms = None, None
            second = await client.turn(speech(300))
            await client.close()
        return first, second, server, sink, heard[0]

    first, second, server, sink, heard = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    assert first.status == "interrupted" and heard == 80
    assert sink.stops == [80]
    assert second.status == "ok" and second.reply_text == "Sure, I'll stop."


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_vad(dialect: str) -> None:
    name = f"server-vad.{dialect}.jsonl"

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, dialect=dialect, turn_detection="server_vad")
            outcome = await client.turn(speech(900))
            await client.close()
        return outcome, server

    outcome, server = run(go())
    assert server.mismatches == []
    # server VAD owns the turn: the client never commits or asks for a response
    assert client_types(server) == ["session.update"]
    update = server.received[0]["session"]
    turn = update["audio"]["input"]["turn_detection"] if dialect == "ga" else update["turn_detection"]
    assert turn["type"] == "server_vad"
    assert outcome.status == "ok" and outcome.user_text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_barge_in_server_vad(dialect: str) -> None:
    """speech_started during playback: stop and truncate at 120 ms heard; the next reply plays."""
    name = f"barge-in-server-vad.{dialect}.jsonl"

    async def go() -> tuple[Any, FakeRealtimeServer, PlaybackSink]:
        sink = PlaybackSink(cap_ms=120)
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, sink, dialect=dialect, turn_detection="server_vad")
            outcome = await client.turn(speech(900))
            await client.close()
        return outcome, server, sink

    outcome, server, sink = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    assert sink.stops == [120]
    assert outcome.status == "ok" and outcome.reply_text  # the answer to the second utterance


@pytest.mark.parametrize("dialect", DIALECTS)
def test_text_only(dialect: str) -> None:
    name = f"text-only.{dialect}.jsonl"

    async def go() -> tuple[Any, FakeRealtimeServer, PlaybackSink]:
        sink = PlaybackSink()
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, sink, dialect=dialect)
            outcome = await client.text_turn("Which lights are on right now?")
            await client.close()
        return outcome, server, sink

    outcome, server, sink = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    sent = [e for e in server.received if e["type"] == "response.create"][0]["response"]
    assert sent == ({"output_modalities": ["text"]} if dialect == "ga" else {"modalities": ["text"]})
    assert outcome.status == "ok" and "light" in outcome.reply_text.lower()
    assert sink.chunks == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_out_of_band(dialect: str) -> None:
    """A side task outside the conversation, correlated by metadata; no audio, no tools."""
    name = f"out-of-band.{dialect}.jsonl"
    instructions = "Classify the referenced user message. Reply with one word: device_control, reminder, question or other."

    async def go() -> tuple[str, FakeRealtimeServer]:
        async with FakeRealtimeServer(dialect=dialect, replay=EVENTS / name) as server:  # type: ignore[arg-type]
            client = make_client(server.url, dialect=dialect)
            label = await client.side_task("Remind me to water the plants at six.", instructions, "intent_classification")
            await client.close()
        return label, server

    label, server = run(go())
    assert server.mismatches == []
    assert client_types(server) == expected_types(name)
    assert label == "reminder"


def test_session_expiry_mid_turn() -> None:
    """session_expired + close 1001: the turn ends with a prompt; the next turn opens a new session."""

    async def go() -> tuple[Any, RealtimeClient, FakeRealtimeServer]:
        async with FakeRealtimeServer(replay=EVENTS / "session-expiry.ga.jsonl",
                                      close_after=(1001, "Your session hit the maximum duration of 60 minutes.")) as server:
            client = make_client(server.url)
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome, client, server

    outcome, client, server = run(go())
    assert server.mismatches == []
    assert outcome.status == "failed" and outcome.code == "cloud-expired" and outcome.prompt == "cloud_expired"
    assert client._ws is None


def test_beta_header_rejected() -> None:
    """OpenAI's answer to the retired beta handshake: an error then close 4000; no retry loop."""

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replay=EVENTS / "beta-header-rejected.ga.jsonl",
                                      close_after=(4000, "beta_api_shape_disabled")) as server:
            client = make_client(server.url, dialect="beta")
            outcome = await client.turn(speech(300))
        return outcome, server

    outcome, server = run(go())
    assert outcome.code == "cloud-beta-rejected" and outcome.prompt == "cloud_config"
    assert server.connections == 1  # configuration errors are not retried
    assert server.headers[0]["openai-beta"] == "realtime=v1"


def test_ga_sends_no_beta_header() -> None:
    async def go() -> FakeRealtimeServer:
        async with FakeRealtimeServer(reject_beta=True) as server:
            client = make_client(server.url)
            outcome = await client.turn(speech(300))
            await client.close()
            assert outcome.status == "ok"
        return server

    server = run(go())
    assert "openai-beta" not in server.headers[0]
    assert server.received[0]["session"]["type"] == "realtime"


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.jsonl")))
def test_every_server_line_parses(name: str) -> None:
    """The parser types every server line of every transcript (WebRTC and out-of-band included)."""
    from device.cloud.protocol import Other, parse_server_event

    dialect = "beta" if ".beta." in name else "ga"
    count = 0
    for direction, event in load_transcript(EVENTS / name):
        if direction == "server":
            parsed = parse_server_event(json.dumps(event), dialect)  # type: ignore[arg-type]
            assert parsed
            known = {"content_part", "rate_limits", "output_audio_buffer", "conversation.created",
                     "transcription.delta", "function_call_arguments.delta", "buffer.cleared",
                     "transcript.done", "text.done", "conversation.item.done"}
            for p_ in parsed:
                if isinstance(p_, Other):
                    assert any(k in p_.type for k in known), p_.type
            count += 1
    assert count >= 1
    _ = np  # numpy imported for the module's audio helpers
