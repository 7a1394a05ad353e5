"""The home over a real mosquitto: the virtual home process, the speaker's session, restarts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from device.errors import ToolError
from device.events import ToolCall
from device.sim.broker import Mosquitto
from device.tools.session import HomeSession
from tests.home.conftest import SimHome, run_async, settings_for


class Observer:
    """An independent MQTT v5 client that records everything it sees."""

    def __init__(self, broker: Mosquitto, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes, Any, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"observer-{time.monotonic_ns()}", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), msg.properties, bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [m[1] for m in self.messages if m[0] == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name, arguments, call_id="t1")


@run_async
async def test_tools_act_and_confirm_through_state_topics(mosquitto: Mosquitto, sim_home: SimHome) -> None:
    observer = Observer(mosquitto)
    async with HomeSession(settings_for(mosquitto)) as home:
        assert len(home.registry.entities()) == 13
        result = await home.tools.execute(call("turn_on", entity="kitchen light"))
        assert (result.status, result.message) == ("ok", "Turned on the kitchen light.")
        assert home.registry.state("light.kitchen_light").values["state"] == "on"
        # "all lights in the bedroom": two lights, each by its own convention.
        result = await home.tools.execute(call("set_brightness", area="bedroom", domain="light", brightness=30))
        assert result.status == "ok"
        assert {i["entity"] for i in result.data["entities"]} == {"light.bedroom_light"}
        assert result.data["skipped"] == ["light.bedside_lamp"]  # a Tasmota relay: it can't dim
        result = await home.tools.execute(call("turn_off", area="Bedroom", domain="light"))
        assert result.status == "ok" and len(result.data["entities"]) == 2
        # Risky: nothing is published until confirmed.
        result = await home.tools.execute(call("unlock", entity="lock.front_door"))
        assert result.status == "needs_confirmation" and "unlock" in result.message
        await asyncio.sleep(0.2)
        assert observer.on("home/front_door/set") == []
        result = await home.tools.execute(call("unlock", entity="lock.front_door"), confirmed=True)
        assert result.status == "ok"
        assert observer.on("home/front_door/set") == [b"UNLOCK"]
        state = await home.tools.execute(call("get_state", entity="front door"))
        assert state.message == "The front door is unlocked."
        # Bad input never raises and never publishes.
        for bad in (call("turn_on"), call("turn_on", entity="sauna"), call("set_brightness", entity="kitchen light", brightness=500),
                    call("rm_rf"), call("turn_on", entity="kitchen light", topic="evil/#")):
            assert (await home.tools.execute(bad)).status == "error"
        unknown = await home.tools.execute(call("turn_on", entity="sauna"))
        assert unknown.message == "I don't know a sauna"
        with pytest.raises(ToolError) as info:
            await home.client.publish_command("zigbee2mqtt/bridge/request/restart", b"{}", within_s=1)
        assert info.value.code == "mqtt-topic"
    observer.close()
    commands = [m for m in observer.messages if m[0].endswith("/set")]
    assert all(not retained for _, _, _, retained in commands)  # commands are never retained


@run_async
async def test_a_device_that_does_not_answer_is_unconfirmed(mosquitto: Mosquitto) -> None:
    sim = SimHome(mosquitto, "--ignore", "switch.coffee_maker")
    try:
        async with HomeSession(settings_for(mosquitto, command_timeout_s=0.5)) as home:
            result = await home.tools.execute(call("turn_on", entity="coffee maker"))
            assert result.status == "unconfirmed"
            assert "didn't confirm" in result.message
    finally:
        sim.stop()


@run_async
async def test_broker_restart_in_the_middle_of_a_command(mosquitto: Mosquitto, sim_home: SimHome) -> None:
    settings = settings_for(mosquitto, command_timeout_s=8.0, reconnect_min_s=1.0, reconnect_max_s=2.0)
    async with HomeSession(settings) as home:
        mosquitto.stop()
        while home.client.connected:  # noqa: ASYNC110 - the flag is set from paho's thread
            await asyncio.sleep(0.02)
        task = asyncio.create_task(home.tools.execute(call("turn_on", entity="light.kitchen_light")))
        await asyncio.sleep(0.5)
        assert not task.done()  # held for the broker, not dropped or failed
        mosquitto.start()
        observer = Observer(mosquitto, "zigbee2mqtt/kitchen_light/set")  # connects before the speaker's backoff ends
        result = await task
        assert result.status == "ok", result
        await asyncio.sleep(0.3)
        sent = [m for m in observer.messages]
        observer.close()
    assert [m[1] for m in sent] == [b'{"state": "ON"}']  # exactly once
    expiry = sent[0][2].MessageExpiryInterval
    assert 1 <= expiry <= 8  # the command's remaining deadline rides along as v5 message expiry


@run_async
async def test_a_command_fails_clearly_when_the_broker_stays_down(mosquitto: Mosquitto, sim_home: SimHome) -> None:
    settings = settings_for(mosquitto, command_timeout_s=0.6, reconnect_min_s=1.0, reconnect_max_s=2.0)
    async with HomeSession(settings) as home:
        mosquitto.stop()
        while home.client.connected:  # noqa: ASYNC110 - the flag is set from paho's thread
            await asyncio.sleep(0.02)
        result = await home.tools.execute(call("turn_off", entity="light.kitchen_light"))
        assert result.status == "error" and result.data["code"] == "mqtt-offline"
        assert "unreachable" in result.message
        mosquitto.start()
        observer = Observer(mosquitto, "zigbee2mqtt/kitchen_light/set")
        assert await home.client.wait_connected(5)
        await asyncio.sleep(0.5)
        observer.close()
    assert observer.messages == []  # a failed command is never sent late


@run_async
async def test_availability_online_offline_and_announcement(mosquitto: Mosquitto, sim_home: SimHome) -> None:
    observer = Observer(mosquitto)
    mutes: list[bool] = []
    async with HomeSession(settings_for(mosquitto), on_mute=mutes.append) as home:
        await asyncio.sleep(0.2)
        assert observer.on("voxhome/testspeaker/mute") == [b"OFF"]
        observer.client.publish("voxhome/testspeaker/mute/set", b"ON")
        await asyncio.sleep(0.3)
        assert mutes == [True] and home.muted
        assert observer.on("voxhome/testspeaker/mute") == [b"OFF", b"ON"]
        assert observer.on("voxhome/testspeaker/availability") == [b"online"]
        assert observer.on("homeassistant/switch/testspeaker/mute/config")
        # Home Assistant restarted: it gets our configs again.
        before = len(observer.on("homeassistant/sensor/testspeaker/last_command/config"))
        assert "esphome/livingroom_lamp/status" in home.registry.subscriptions()
        observer.client.publish("esphome/livingroom_lamp/status", b"online")  # a device, not HA
        await asyncio.sleep(0.2)
        assert len(observer.on("homeassistant/sensor/testspeaker/last_command/config")) == before
        observer.client.publish("homeassistant/status", b"online")
        await asyncio.sleep(0.3)
        assert len(observer.on("homeassistant/sensor/testspeaker/last_command/config")) == before + 1
    await asyncio.sleep(0.2)
    observer.close()
    assert observer.on("voxhome/testspeaker/availability")[-1] == b"offline"  # published on clean stop


def test_last_will_marks_a_crashed_speaker_offline(mosquitto: Mosquitto) -> None:
    script = (
        "import asyncio, sys\n"
        "from device.tools.session import HomeSession\n"
        "from device.settings import settings_from_dict\n"
        f"s = settings_from_dict({{'device': {{'id': 'crashy'}}, 'mqtt': {{'host': '{mosquitto.host}', 'port': {mosquitto.port}}}}})\n"
        "async def main():\n"
        "    async with HomeSession(s):\n"
        "        print('up', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    observer = Observer(mosquitto, "voxhome/crashy/availability")
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while observer.on("voxhome/crashy/availability")[-1:] != [b"offline"] and time.monotonic() < deadline:
        time.sleep(0.05)
    observer.close()
    assert observer.on("voxhome/crashy/availability") == [b"online", b"offline"]


def test_voxhome_say_prints_decision_and_result(mosquitto: Mosquitto, sim_home: SimHome) -> None:
    def say(*args: str) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "device", "--config", os.devnull, "say", "--quiet", "--mqtt", mosquitto.url, *args],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode in (0, 1), out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    decision, result = say("dim the kitchen to thirty")
    assert decision["tool"] == "set_brightness" and decision["arguments"]["brightness"] == 30
    assert result["status"] == "ok" and result["data"]["entities"][0]["state"]["brightness"] == 30
    decision, result = say("open the garage")
    assert result["status"] == "needs_confirmation"
    decision, result = say("--yes", "open the garage")
    assert result["status"] == "ok"
    (decision,) = say("turn on the sauna")
    assert decision["kind"] == "reject" and decision["message"] == "I don't know a sauna."
    (decision,) = say("what's the weather tomorrow")
    assert decision["kind"] == "not_local"


def test_voxhome_say_speaks_the_answer_through_the_speaker(mosquitto: Mosquitto, sim_home: SimHome, tmp_path: Path) -> None:
    """The answer is spoken through the one player: decode what it played and compare it with
    the local TTS saying the tool result's message."""
    import numpy as np

    from device.voice.level import trim_silence
    from device.voice.tts import LocalTts
    from hal.source import read_audio_file

    wav = tmp_path / "speaker.wav"
    config = tmp_path / "config.toml"
    config.write_text('[voice]\nengine = "espeak-ng"\n')  # deterministic, so the played audio can be compared
    out = subprocess.run([sys.executable, "-m", "device", "--config", str(config), "say", "--mqtt", mosquitto.url,
                          "--speaker-wav", str(wav), "turn on the kitchen light"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    decision, result, spoke = (json.loads(line) for line in out.stdout.splitlines())
    assert result["status"] == "ok" and spoke["type"] == "spoke" and spoke["text"] == result["message"]
    played = read_audio_file(wav)
    # The voice trims the engine's trailing silence (and levels it to the earcons: correlation
    # ignores the scale).
    expected = trim_silence(LocalTts("espeak-ng").speak(result["message"]).audio)
    assert abs(len(played) - len(expected)) < 16000 * 0.1
    n = min(len(played), len(expected))
    assert np.corrcoef(played[:n], expected[:n])[0, 1] > 0.9
