"""The simulator as a real subprocess and the benchmark's report (numbers are not asserted here)."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from device.bench import cloud as bench
from device.cli.common import add_cloud_option, settings_from_args
from tests.cloud.conftest import HomeTools, PlaybackSink, make_client, speech

ROOT = Path(__file__).resolve().parents[2]


def test_sim_cloud_demo_turn_changes_a_virtual_device() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "device", "sim", "cloud", "--port", "0", "--tool", "control_device",
                             "--arguments", '{"entity_id": "light.kitchen", "action": "turn_on"}',
                             "--say", "Done, the kitchen light is on."], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        assert hello["type"] == "listening"
        tools, sink = HomeTools(), PlaybackSink()

        async def go() -> Any:
            client = make_client(hello["url"], sink, tools)
            outcome = await client.turn(speech(600))
            await client.close()
            return outcome

        outcome = asyncio.run(asyncio.wait_for(go(), 20))
        assert outcome.status == "ok" and outcome.reply_text == "Done, the kitchen light is on."
        assert tools.state["light.kitchen"] == "on"
        assert [r.status for r in outcome.tool_results] == ["ok"]
        assert abs(sink.queued_ms - 1200) < 5
        # Telemetry's cloud stage: a real reply reached the sink, after the turn began.
        assert outcome.first_audio_ms is not None and 0 <= outcome.first_audio_ms < 20_000
    finally:
        proc.terminate()
        proc.wait(10)


def test_cloud_url_option_overrides_the_endpoint() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_cloud_option(parser)
    args = parser.parse_args(["--cloud-url", "ws://127.0.0.1:9/v1/realtime"])
    from device.cloud.connection import websocket_url

    assert websocket_url(settings_from_args(args).cloud) == "ws://127.0.0.1:9/v1/realtime"


def test_url_from_base_url() -> None:
    from device.cloud.connection import websocket_url
    from device.settings import CloudSettings

    assert websocket_url(CloudSettings()) == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    gw = CloudSettings(base_url="http://gateway.local:8080/v1", model="gpt-4o-realtime-preview-2025-06-03", dialect="beta")
    assert websocket_url(gw) == "ws://gateway.local:8080/v1/realtime?model=gpt-4o-realtime-preview-2025-06-03"


def test_openai_without_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = make_client("wss://api.openai.com/v1/realtime?model=gpt-realtime")
    outcome = asyncio.run(client.turn(speech(300)))
    assert (outcome.code, outcome.prompt) == ("cloud-no-key", "cloud_auth")


def test_bench_prints_medians(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    rc = bench.run(parser.parse_args(["--turns", "3", "--json"]))
    report = json.loads(capsys.readouterr().out)
    assert set(report["medians_ms"]) >= {"speech_end_to_sink_ms", "delta_to_sink_ms", "barge_in_stop_ms", "peer_ws_round_trip_ms"}
    assert all(v > 0 for v in report["medians_ms"].values())
    assert rc == (1 if report["missed"] else 0)
