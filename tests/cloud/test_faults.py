"""Item 6's faults, each against a real socket on 127.0.0.1: every one ends in a typed outcome
with a prompt id, within bounded time, and the client recovers on the next turn."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from device.cloud.connection import backoff_delay
from device.cloud.fake_server import FakeRealtimeServer, Reply
from device.cloud.realtime import RealtimeClient
from device.settings import Secret
from tests.cloud.conftest import HomeTools, PlaybackSink, make_client, settings, speech

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def test_connection_refused_retries_with_backoff_then_prompts() -> None:
    sleep = RecordingSleep()
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    client = RealtimeClient(settings(url, retries=3), HomeTools(), PlaybackSink(), sleep=sleep, rng=random.Random(1))
    start = time.monotonic()
    outcome = run(client.turn(speech(300)))
    assert outcome.status == "failed" and outcome.code == "cloud-unreachable"
    assert outcome.prompt == "cloud_unreachable" and outcome.say() is not None
    assert len(sleep.delays) == 3
    assert 0.375 <= sleep.delays[0] <= 0.5 and 0.75 <= sleep.delays[1] <= 1.0 and 1.5 <= sleep.delays[2] <= 2.0
    assert time.monotonic() - start < 5


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, rng) for n in range(1, 10)]
    assert all(d <= 8.0 for d in delays) and delays[-1] >= 6.0
    assert len({round(d, 6) for d in delays[-3:]}) == 3  # jitter: capped delays still differ


def test_dns_failure() -> None:
    client = make_client("ws://voxhome-no-such-host.invalid/v1/realtime", retries=1)
    outcome = run(client.turn(speech(300)))
    assert outcome.code == "cloud-dns" and outcome.prompt == "cloud_unreachable"


def test_tls_failure() -> None:
    """wss:// to a port that answers in plain text (a captive portal, a proxy): a TLS error."""

    async def go() -> Any:
        async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await reader.read(100)
            writer.close()

        server = await asyncio.start_server(plain, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await make_client(f"wss://127.0.0.1:{port}/v1/realtime", retries=0).turn(speech(300))

    outcome = run(go())
    assert outcome.code == "cloud-tls" and outcome.prompt == "cloud_unreachable"


@pytest.mark.parametrize(("status", "code", "prompt", "tries"), [
    (401, "cloud-auth", "cloud_auth", 1),
    (429, "cloud-rate-limited", "cloud_busy", 3),
    (503, "cloud-http", "cloud_unreachable", 3),
])
def test_handshake_status(status: int, code: str, prompt: str, tries: int) -> None:
    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(reject_status=status) as server:
            outcome = await make_client(server.url, retries=2).turn(speech(300))
        return outcome, server

    outcome, server = run(go())
    assert (outcome.code, outcome.prompt) == (code, prompt)
    assert server.connections == tries  # 401 is never retried; 429/5xx are, with backoff


def test_key_from_env_is_sent_and_never_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123")
    caplog.set_level(logging.DEBUG)

    async def go() -> tuple[Any, Any]:
        async with FakeRealtimeServer(api_key="sk-test-SECRET-123") as server:
            client = make_client(server.url)
            ok = await client.turn(speech(300))
            await client.close()
        async with FakeRealtimeServer(api_key="another-key") as server:
            bad = await make_client(server.url).turn(speech(300))
        return ok, bad

    ok, bad = run(go())
    assert ok.status == "ok"
    assert bad.code == "cloud-auth"
    # (the fake server's own request log is the remote side, not the device)
    device_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert device_logs and not any("SECRET" in m for m in device_logs)


def test_key_from_secret_file(tmp_path: Any) -> None:
    key = tmp_path / "key"
    key.write_text("sk-from-file\n")

    async def go() -> Any:
        async with FakeRealtimeServer(api_key="sk-from-file") as server:
            client = RealtimeClient(settings(server.url, api_key=Secret(file=str(key))), HomeTools(), PlaybackSink())
            outcome = await client.turn(speech(300))
            await client.close()
            return outcome

    assert run(go()).status == "ok"


def test_privacy_switch_never_connects() -> None:
    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer() as server:
            outcome = await make_client(server.url, enabled=False).turn(speech(300))
        return outcome, server

    outcome, server = run(go())
    assert outcome.prompt == "cloud_disabled" and server.connections == 0


def test_server_error_event_then_silence_fails_the_turn_and_recovers() -> None:
    async def go() -> tuple[Any, Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(server_error=True), Reply(text="Back.")]) as server:
            client = make_client(server.url, response_timeout_s=0.3)
            first = await client.turn(speech(300))
            second = await client.turn(speech(300))
            await client.close()
        return first, second, server

    first, second, server = run(go())
    assert first.code == "cloud-timeout" and first.prompt == "cloud_timeout"
    assert any(e["type"] == "response.cancel" for e in server.received)
    assert second.status == "ok" and second.reply_text == "Back."
    assert server.connections == 2  # a stuck session is replaced by a fresh one


def test_failed_response_rate_limit_keeps_session() -> None:
    async def go() -> tuple[Any, Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(fail_code="inference_rate_limit_exceeded"), Reply()]) as server:
            client = make_client(server.url)
            first = await client.turn(speech(300))
            second = await client.turn(speech(300))
            await client.close()
        return first, second, server

    first, second, server = run(go())
    assert (first.code, first.prompt) == ("cloud-rate-limited", "cloud_busy")
    assert second.status == "ok" and server.connections == 1


def test_disconnect_mid_reply() -> None:
    sink = PlaybackSink()

    async def go() -> tuple[Any, Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(audio_ms=800, drop_after=4), Reply(text="Again.")]) as server:
            client = make_client(server.url, sink)
            first = await client.turn(speech(300))
            second = await client.turn(speech(300))
            await client.close()
        return first, second, server

    first, second, server = run(go())
    assert (first.code, first.prompt) == ("cloud-dropped", "cloud_dropped")
    assert second.status == "ok" and server.connections == 2


def test_silent_server_times_out_connect() -> None:
    async def go() -> tuple[Any, float]:
        async with FakeRealtimeServer(silent=True) as server:
            start = time.monotonic()
            outcome = await make_client(server.url, connect_timeout_s=0.3, retries=1).turn(speech(300))
            return outcome, time.monotonic() - start

    outcome, took = run(go())
    assert outcome.code == "cloud-timeout" and outcome.prompt == "cloud_timeout"
    assert took < 2.0


def test_silent_response_times_out() -> None:
    async def go() -> Any:
        async with FakeRealtimeServer(replies=[Reply(silent=True)]) as server:
            client = make_client(server.url, response_timeout_s=0.3)
            outcome = await client.turn(speech(300))
            await client.close()
            return outcome

    assert run(go()).code == "cloud-timeout"


def test_session_expiry_while_idle_reconnects_transparently() -> None:
    async def go() -> tuple[Any, Any, RealtimeClient, FakeRealtimeServer]:
        async with FakeRealtimeServer() as server:
            client = make_client(server.url)
            first = await client.turn(speech(300))
            await server.expire()
            await asyncio.sleep(0.1)
            second = await client.turn(speech(300))
            await client.close()
        return first, second, client, server

    first, second, client, server = run(go())
    assert first.status == second.status == "ok"
    assert client.sessions == 2 and server.connections == 2
    # the new session is configured again before it is used
    assert [e["type"] for e in server.received].count("session.update") == 2


def test_idle_close() -> None:
    async def go() -> tuple[Any, RealtimeClient]:
        async with FakeRealtimeServer() as server:
            client = make_client(server.url, idle_close_s=0.2)
            client._sleep = asyncio.sleep
            outcome = await client.turn(speech(300))
            assert client._ws is not None
            await asyncio.sleep(0.6)
            return outcome, client

    outcome, client = run(go())
    assert outcome.status == "ok" and outcome.followup_s == 4.0
    assert client._ws is None


def test_too_short_utterance_is_not_committed() -> None:
    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer() as server:
            client = make_client(server.url)
            outcome = await client.turn(speech(50))
            await client.close()
        return outcome, server

    outcome, server = run(go())
    assert outcome.status == "empty"
    assert not any(e["type"] == "input_audio_buffer.commit" for e in server.received)


def test_wrong_dialect_update_is_rejected_with_a_config_prompt() -> None:
    """Checklist #1/#2: a beta-shaped session.update to a GA server is refused whole."""

    async def go() -> tuple[Any, FakeRealtimeServer]:
        async with FakeRealtimeServer(dialect="ga") as server:
            outcome = await make_client(server.url, dialect="beta").turn(speech(300))
        return outcome, server

    outcome, server = run(go())
    assert (outcome.code, outcome.prompt) == ("cloud-session-rejected", "cloud_config")
    assert server.connections == 1
    assert not any(e["type"] == "input_audio_buffer.append" for e in server.received)


def test_session_rotates_before_expiry_while_idle() -> None:
    now = [1000.0]

    async def go() -> tuple[list[Any], FakeRealtimeServer]:
        async with FakeRealtimeServer(session_s=600) as server:
            client = RealtimeClient(settings(server.url), HomeTools(), PlaybackSink(), clock=lambda: now[0])
            outcomes = [await client.turn(speech(300))]
            now[0] += 200  # well inside the session: same connection
            outcomes.append(await client.turn(speech(300)))
            now[0] += 200  # within 300 s of expires_at: rotate before the turn
            outcomes.append(await client.turn(speech(300)))
            await client.close()
        return outcomes, server

    outcomes, server = run(go())
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert server.connections == 2
    # the new session first gets the conversation so far, as text (last 8 items)
    types = [e["type"] for e in server.received]
    second = types.index("session.update", 1)
    replayed = [e["item"] for e in server.received[second + 1:second + 3]]
    assert [(i["role"], i["content"][0]) for i in replayed] == [
        ("assistant", {"type": "output_text", "text": "Okay."}), ("assistant", {"type": "output_text", "text": "Okay."})]


def test_follow_up_turn_reuses_the_session() -> None:
    async def go() -> tuple[Any, Any, RealtimeClient, FakeRealtimeServer]:
        async with FakeRealtimeServer(replies=[Reply(text="Which room?"), Reply(text="Kitchen it is.")]) as server:
            client = make_client(server.url)
            first = await client.turn(speech(300))
            second = await client.turn(speech(300))  # spoken inside first.followup_s, no wake word
            await client.close()
        return first, second, client, server

    first, second, client, server = run(go())
    assert first.followup_s == 4.0 and second.reply_text == "Kitchen it is."
    assert client.sessions == 1 and server.connections == 1


def test_azure_and_beta_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    from device.cloud.connection import headers

    assert headers(settings("wss://res.openai.azure.com/openai/v1/realtime?model=dep")) == {"api-key": "k"}
    beta = settings("wss://gateway.example/v1/realtime?model=m", dialect="beta")
    assert headers(beta) == {"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"}
