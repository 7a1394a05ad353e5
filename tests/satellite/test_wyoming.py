"""The speaker as a Wyoming satellite, driven by wyoming's own client standing in for HA: describe,
run-satellite, a spoken command streamed to HA, HA's transcript and answer audio played and
confirmed with `played`, a timer, a malformed event, and HA going away mid-turn."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.pipeline import RunPipeline
from wyoming.satellite import RunSatellite
from wyoming.snd import Played
from wyoming.timer import TimerFinished, TimerStarted
from wyoming.tts import Synthesize

from device.events import Say
from device.satellite.wyoming_sat import WyomingSatellite
from hal.player import Player, WavOutput

from .conftest import played, spoken, utterance

COMMAND = "set a timer for pasta"
ANSWER = "Timer started for ten minutes."


async def ha_client(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    return client


async def read_until(client: AsyncTcpClient, kind: Any) -> tuple[Any, list[Any]]:
    seen: list[Any] = []
    while True:
        event = await client.read_event()
        assert event is not None, "satellite closed the connection"
        seen.append(event)
        if kind.is_type(event.type):
            return kind.from_event(event), seen


async def answer(client: AsyncTcpClient) -> tuple[bytes, Any]:
    """HA's side of one pipeline: take the audio, say what it heard, stream the answer."""
    run, _ = await read_until(client, RunPipeline)
    audio = bytearray()
    while True:
        event = await client.read_event()
        assert event is not None
        if AudioChunk.is_type(event.type):
            audio += AudioChunk.from_event(event).audio
        if AudioStop.is_type(event.type):
            break
    await client.write_event(Transcript(text=COMMAND).event())
    await client.write_event(Synthesize(text=ANSWER).event())
    voice, rate = spoken(ANSWER)
    pcm = (voice * 32767).astype("<i2").tobytes()
    await client.write_event(AudioStart(rate, 2, 1).event())
    for i in range(0, len(pcm), 4096):
        await client.write_event(AudioChunk(rate, 2, 1, pcm[i:i + 4096]).event())
    await client.write_event(AudioStop().event())
    await read_until(client, Played)
    return bytes(audio), run


def test_wyoming_satellite_turn_timer_and_faults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    command = utterance(COMMAND)
    out = tmp_path / "speaker.wav"

    async def go() -> dict[str, Any]:
        events: list[object] = []

        async def emit(event: object) -> None:
            events.append(event)

        player = Player(WavOutput(out))
        sat = WyomingSatellite(player, name="kitchen-speaker", port=0, area="Kitchen", wake_words=("okay_nabu",), emit=emit)
        await sat.start("127.0.0.1", announce=False)
        r: dict[str, Any] = {"events": events}
        try:
            r["before"] = await sat.turn(command)
            # A malformed event closes that connection only.
            reader, writer = await asyncio.open_connection("127.0.0.1", sat.port)
            writer.write(b"{not json\n")
            await writer.drain()
            r["garbage"] = await asyncio.wait_for(reader.read(), 5)
            client = await ha_client(sat.port)
            await client.write_event(Describe().event())
            r["info"], _ = await read_until(client, Info)
            await client.write_event(RunSatellite().event())
            for _ in range(100):
                if sat.connected:
                    break
                await asyncio.sleep(0.02)
            ha = asyncio.create_task(answer(client))
            r["outcome"] = await sat.turn(command)
            r["heard_by_ha"], r["run"] = await ha
            await client.write_event(TimerStarted(id="t1", total_seconds=600, name="pasta").event())
            await client.write_event(TimerFinished(id="t1").event())
            for _ in range(100):
                if any(isinstance(e, Say) for e in events):
                    break
                await asyncio.sleep(0.02)
            # HA goes away in the middle of the next turn.
            async def vanish() -> None:
                await read_until(client, AudioStop)
                await client.disconnect()

            gone = asyncio.create_task(vanish())
            r["lost"] = await sat.turn(command)
            await gone
            return r
        finally:
            await sat.close()
            player.close()

    with caplog.at_level(logging.WARNING, logger="device.satellite.wyoming_sat"):
        r = asyncio.run(asyncio.wait_for(go(), 40))
    assert r["before"].code == "ha-not-connected"
    assert r["garbage"] == b"" and any("closed the Wyoming connection" in m.getMessage() for m in caplog.records)
    sat_info = r["info"].satellite
    assert sat_info.name == "kitchen-speaker" and sat_info.area == "Kitchen" and sat_info.active_wake_words == ["okay_nabu"]
    assert r["run"].start_stage == "asr" and r["run"].end_stage == "tts"
    assert r["heard_by_ha"] == command
    outcome = r["outcome"]
    voice, rate = spoken(ANSWER)
    expected_ms = 1000 * len(voice) // rate
    assert outcome.status == "ok" and outcome.user_text == COMMAND and outcome.reply_text == ANSWER
    assert abs(outcome.played_ms - expected_ms) < 100
    assert len(played(out)) >= 0.95 * expected_ms * 16
    assert Say(prompt="timer", text="The pasta timer is done.") in r["events"]
    lost = r["lost"]
    assert lost.status == "failed" and lost.code == "ha-unreachable"
    assert lost.say() == Say(prompt="cloud_unreachable", text="I can't reach Home Assistant.")
