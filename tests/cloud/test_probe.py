"""`voxhome doctor`'s cloud line: which transport is in use and whether it reaches its endpoint,
against the fake (real WebSocket, real aiortc calls endpoint) on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from device.cloud.fake_server import FakeRealtimeServer
from device.settings import Secret, Settings, replace_path
from device.system.doctor import check_cloud


@pytest.fixture
def fake() -> Iterator[FakeRealtimeServer]:
    """The fake on its own loop and thread: the doctor runs its own `asyncio.run`."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeRealtimeServer(webrtc=True, api_key="sk-right")
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXHOME_PROBE_KEY", "sk-right")
    monkeypatch.setenv("VOXHOME_PROBE_WRONG", "sk-wrong")


def cloud(server: FakeRealtimeServer, **fields: Any) -> Settings:
    settings = replace_path(Settings(), "cloud.url", server.url)
    settings = replace_path(settings, "cloud.base_url", server.base_url)
    settings = replace_path(settings, "cloud.api_key", Secret(env="VOXHOME_PROBE_KEY"))
    for name, value in fields.items():
        settings = replace_path(settings, f"cloud.{name}", value)
    return settings


def test_doctor_names_the_transport_and_opens_a_real_call(fake: FakeRealtimeServer) -> None:
    rtc = check_cloud(cloud(fake, transport="webrtc"), timeout_s=5)
    assert rtc.status == "ok" and rtc.detail.startswith("webrtc to http://127.0.0.1:") and "/realtime/calls" in rtc.detail
    assert len(fake.calls.offers) == 1  # an SDP offer really went to the calls endpoint
    ws = check_cloud(cloud(fake), timeout_s=5)
    assert ws.status == "ok" and ws.detail.startswith("websocket to ws://127.0.0.1:")
    assert "sk-right" not in rtc.detail + ws.detail


def test_a_refused_call_warns_when_the_websocket_still_answers(fake: FakeRealtimeServer) -> None:
    fake.calls_status = 503
    check = check_cloud(cloud(fake, transport="webrtc"), timeout_s=5)
    assert check.status == "warn" and "cloud-http" in check.detail and "fall back to the WebSocket" in check.detail
    assert "transport" in check.fix


def test_a_wrong_key_fails_on_both_transports(fake: FakeRealtimeServer) -> None:
    check = check_cloud(cloud(fake, transport="webrtc", api_key=Secret(env="VOXHOME_PROBE_WRONG")), timeout_s=5)
    assert check.status == "fail" and "cloud-auth" in check.detail and "credential" in check.fix
