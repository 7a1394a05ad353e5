"""Tool calls and barge-in against the scripted fake server (real sockets)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest

from device.cloud.fake_server import FakeRealtimeServer, Reply
from device.events import AudioChunk, ToolCall, ToolResult
from hal.player import NullOutput, Player
from tests.cloud.conftest import HomeTools, PlaybackSink, make_client, speech

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


def outputs(server: FakeRealtimeServer) -> list[dict[str, Any]]:
    return [json.loads(e["item"]["output"]) for e in server.received
            if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"]


def test_bad_calls_get_error_results_and_the_model_continues() -> None:
    tools = HomeTools()
    calls = (
        ("open_pod_bay_doors", "{}"),
        ("control_device", "{not json"),
        ("control_device", '{"entity_id": "light.kitchen", "action": "explode"}'),
        ("control_device", '{"entity_id": "lock.front_door", "action": "unlock"}'),
        ("control_device", '{"entity_id": "light.kitchen", "action": "turn_on"}'),
    )

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(calls=calls), Reply(text="Kitchen is on; say yes to unlock.")]) as server:
            client = make_client(server.url, tools=tools)
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome, server

    outcome, server = run(go())
    assert outcome.status == "ok" and outcome.reply_text == "Kitchen is on; say yes to unlock."
    out = outputs(server)
    assert [o["ok"] for o in out] == [False, False, False, False, True]
    assert "unknown tool" in out[0]["error"]
    assert "JSON" in out[1]["error"]
    assert "invalid arguments" in out[2]["error"]
    assert out[3]["needs_confirmation"] is True  # passed back for the model to ask
    assert tools.state == {"light.kitchen": "on", "light.living_room": "on", "lock.front_door": "locked"}
    # only the two schema-valid calls reached the executor
    assert [c.arguments["action"] for c in tools.executed] == ["unlock", "turn_on"]
    types = [e["type"] for e in server.received]
    assert types.count("response.create") == 2


class SlowTools(HomeTools):
    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        if call.arguments["entity_id"] == "light.kitchen":
            await asyncio.sleep(5)
        if call.arguments["entity_id"] == "light.living_room":
            raise RuntimeError("broker gone")
        return await super().execute(call, confirmed=confirmed)


def test_tool_timeout_and_crash_become_error_outputs() -> None:
    calls = (("control_device", '{"entity_id": "light.kitchen", "action": "turn_on"}'),
             ("control_device", '{"entity_id": "light.living_room", "action": "turn_off"}'))

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(calls=calls), Reply()]) as server:
            client = make_client(server.url, tools=SlowTools(), tool_timeout_s=0.2)
            outcome = await client.turn(speech(300))
            await client.close()
        return outcome, server

    outcome, server = run(go())
    assert outcome.status == "ok"
    assert [o.get("error") for o in outputs(server)] == ["timeout", "tool failed: RuntimeError"]


def test_barge_in_on_paced_reply_stops_at_once_and_truncates_to_what_was_heard() -> None:
    sink = PlaybackSink(cap_ms=200)

    async def go() -> tuple[Any, int, FakeRealtimeServer, Any]:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=3000, pace_ms=10), Reply(text="Yes?")]) as server:
            client = make_client(server.url, sink)
            task = asyncio.create_task(client.turn(speech(300)))
            playing = asyncio.Event()
            sink.on_play = lambda s: playing.set() if s.queued_ms >= 300 else None
            await playing.wait()
            heard = await client.interrupt()
            first = await task
            second = await client.turn(speech(300))
            await client.close()
            return first, heard, server, second

    first, heard, server, second = run(go())
    assert first.status == "interrupted" and heard == 200
    types = [e["type"] for e in server.received]
    cancel = types.index("response.cancel")
    assert types[cancel + 1] == "conversation.item.truncate"
    truncate = server.received[cancel + 1]
    assert truncate["audio_end_ms"] == 200  # played, not received (which was more)
    assert second.status == "ok" and second.reply_text == "Yes?"
    # the cancelled reply's late audio never reached the sink after the stop
    assert sink.stops[0] == 200


def test_interrupt_after_reply_finished_tolerates_cancel_race() -> None:
    """The reply is fully received but still playing: truncate only (nothing active to cancel)."""
    sink = PlaybackSink(cap_ms=100)

    async def go() -> tuple[int, FakeRealtimeServer, Any]:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=400), Reply()]) as server:
            client = make_client(server.url, sink)
            await client.turn(speech(300))
            heard = await client.interrupt()
            nxt = await client.turn(speech(300))
            await client.close()
            return heard, server, nxt

    heard, server, nxt = run(go())
    assert heard == 100
    types = [e["type"] for e in server.received]
    assert "response.cancel" not in types
    assert [e["audio_end_ms"] for e in server.received if e["type"] == "conversation.item.truncate"] == [100]
    assert nxt.status == "ok"


def test_reply_audio_is_resampled_to_16k() -> None:
    sink = PlaybackSink()

    async def go() -> Any:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=1000)]) as server:
            client = make_client(server.url, sink)
            outcome = await client.turn(speech(300))
            await client.close()
            return outcome

    outcome = run(go())
    assert outcome.status == "ok"
    audio = sink.audio.astype(np.float32)
    assert abs(len(audio) - 16000) <= 32
    # the 440 Hz tone survives the 24 k → 16 k conversion
    spectrum = np.abs(np.fft.rfft(audio[1000:9000]))
    assert abs(np.argmax(spectrum) * 16000 / 8000 - 440) <= 4
    # timestamps are audio time of the reply stream, contiguous
    ends = [c.timestamp_ms for c in sink.chunks]
    assert ends == sorted(ends) and ends[0] == 0


def test_a_call_id_runs_once_even_if_delivered_twice() -> None:
    """Checklist #13: a duplicated call (re-sent event) resends the stored output, no second action."""
    from device.cloud import protocol as p

    tools = HomeTools()
    call = p.FunctionArgumentsDone("r1", "i1", "call_1", "control_device", '{"entity_id": "light.kitchen", "action": "turn_on"}')

    async def go() -> FakeRealtimeServer:
        async with FakeRealtimeServer() as server:
            client = make_client(server.url, tools=tools)
            await client.connect()
            await client._run_calls([call], {})
            await client._run_calls([call], {})
            for _ in range(100):  # let the server read both before the socket closes
                if len(outputs(server)) == 2:
                    break
                await asyncio.sleep(0.01)
            await client.close()
        return server

    server = run(go())
    assert len(tools.executed) == 1
    assert [o["state"] for o in outputs(server)] == ["on", "on"]


class Speaker:
    """The real player on an output paced like a sound card (nothing is written anywhere), and an
    event set once `ms` of it have left the speaker (seen through the echo canceller's tap)."""

    def __init__(self, ms: int) -> None:
        self.spoken = threading.Event()
        self._written = 0.0
        self._ms = ms
        self.player = Player(NullOutput(realtime=True), reference=self._tap)

    def _tap(self, chunk: AudioChunk) -> None:
        self._written += chunk.duration_ms
        if self._written >= self._ms:
            self.spoken.set()


@pytest.fixture
def speaker() -> Iterator[Speaker]:
    spk = Speaker(300)
    yield spk
    spk.player.close()


def test_turn_ends_when_the_reply_has_been_heard_not_when_it_arrived(speaker: Speaker) -> None:
    player = speaker.player

    async def go() -> tuple[Any, int, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=700)]) as server:
            client = make_client(server.url, player)  # type: ignore[arg-type]
            outcome = await client.turn(speech(300))
            still_queued = player.played_ms
            await client.close()
        return outcome, still_queued, server

    outcome, played_at_return, server = run(go())
    # The server delivered 700 ms at once; the turn (and the follow-up window after it) waits for
    # the speaker to say it all, and the outcome reports what was heard, tail included.
    assert outcome.status == "ok" and outcome.played_ms >= 690
    assert played_at_return >= 690
    assert "conversation.item.truncate" not in [e["type"] for e in server.received]


def test_wake_word_over_the_reply_tail_interrupts_and_truncates_to_what_was_heard(speaker: Speaker) -> None:
    player = speaker.player

    async def go() -> tuple[Any, int, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=3000)]) as server:
            client = make_client(server.url, player)  # type: ignore[arg-type]
            task = asyncio.create_task(client.turn(speech(300)))
            # The whole reply arrives at once; wait until the speaker is 300 ms into it.
            assert await asyncio.to_thread(speaker.spoken.wait, 5.0)
            assert not task.done()
            heard = await client.interrupt("wake")
            outcome = await task
            await client.close()
        return outcome, heard, server

    outcome, heard, server = run(go())
    assert outcome.status == "interrupted" and 300 <= heard < 1000
    assert outcome.played_ms == heard and outcome.followup_s == 0
    types = [e["type"] for e in server.received]
    assert "response.cancel" not in types  # the response was already done; only the item is cut
    assert [e["audio_end_ms"] for e in server.received if e["type"] == "conversation.item.truncate"] == [heard]
