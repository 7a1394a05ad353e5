"""The speaker as HA's voice satellite, driven by HA's own client (aioesphomeapi.APIClient) over
loopback: plaintext and Noise, device info, entities, the voice pipeline with a spoken command, HA's
TTS URL played from a local HTTP server, announcements, timers, and the faults (wrong key,
malformed frames, HA gone mid-pipeline)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aioesphomeapi import APIClient
from aioesphomeapi.core import InvalidEncryptionKeyAPIError
from aioesphomeapi.model import (
    BinarySensorInfo,
    MediaPlayerEntityState,
    MediaPlayerInfo,
    SwitchInfo,
    SwitchState,
    VoiceAssistantEventType,
    VoiceAssistantFeature,
    VoiceAssistantTimerEventType,
)

from device.assistant import Assistant
from device.cloud.decision import RouteDecider
from device.events import CloudReply, Say, Transcript, VoiceStopped
from device.satellite.esphome_api import (
    EsphomeServer,
    HaTimer,
    SatelliteHooks,
    SpeakerState,
    WakeWord,
)
from device.satellite.pipeline import HaTurns
from device.settings import EsphomeSettings
from hal.player import Player, WavOutput

from .conftest import MediaServer, encoded, played, utterance

KEY = base64.b64encode(bytes(range(32))).decode()
COMMAND = "what is the weather like tomorrow"
ANSWER = "Tomorrow will be sunny with a high of twenty degrees."


def run(coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def started(key: str | None = None, **kwargs: Any) -> EsphomeServer:
    server = EsphomeServer(EsphomeSettings(enabled=True, port=0, encryption_key=key), "kitchen-speaker",
                           friendly_name="Kitchen speaker", area="Kitchen", **kwargs)
    await server.start("127.0.0.1", announce=False)
    return server


async def connected(server: EsphomeServer, key: str | None = None) -> APIClient:
    client = APIClient("127.0.0.1", server.port, None, noise_psk=key, client_info="Home Assistant test", keepalive=60)
    await client.connect(login=True)
    return client


class FakeHa:
    """HA's side of the esphome assist_satellite: takes the audio, answers with pipeline events."""

    def __init__(self, client: APIClient, media: MediaServer | None, answer_path: str = "/tts/answer.wav",
                 on_audio_end: Callable[[], Awaitable[None]] | None = None) -> None:
        self.client = client
        self.media = media
        self.answer_path = answer_path
        self.audio = bytearray()
        self.conversations: list[str] = []
        self.aborted = 0
        self.on_audio_end = on_audio_end or self.answer
        client.subscribe_voice_assistant(handle_start=self.start, handle_stop=self.stop, handle_audio=self.chunk)

    async def start(self, conversation_id: str, flags: int, settings: Any, wake_word: str | None) -> int | None:
        self.conversations.append(conversation_id)
        self.audio.clear()
        return 0  # 0 = audio over the API (what HA answers a device with the API_AUDIO feature)

    async def chunk(self, data: bytes, data2: bytes | None) -> None:
        self.audio += data

    async def stop(self, abort: bool) -> None:
        self.aborted += abort
        if not abort:
            await self.on_audio_end()

    async def answer(self) -> None:
        E = VoiceAssistantEventType
        send = self.client.send_voice_assistant_event
        send(E.VOICE_ASSISTANT_RUN_START, None)
        send(E.VOICE_ASSISTANT_STT_START, None)
        send(E.VOICE_ASSISTANT_STT_END, {"text": COMMAND})
        send(E.VOICE_ASSISTANT_INTENT_START, None)
        send(E.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "conv-1", "continue_conversation": "1"})
        send(E.VOICE_ASSISTANT_TTS_START, {"text": ANSWER})
        assert self.media is not None
        send(E.VOICE_ASSISTANT_TTS_END, {"url": self.media.url(self.answer_path)})
        send(E.VOICE_ASSISTANT_RUN_END, None)


@pytest.mark.parametrize("key", [None, KEY], ids=["plaintext", "noise"])
def test_device_info_and_entities(key: str | None) -> None:
    async def go() -> tuple[Any, Any, list[Any], Any]:
        chosen: list[tuple[str, ...]] = []
        muted: list[bool] = []
        volumes: list[float] = []
        state = SpeakerState(wake_words=(WakeWord("okay_nabu", "Okay Nabu"), WakeWord("hey_jarvis", "Hey Jarvis")),
                             active_wake_words=("okay_nabu",))
        server = await started(key, state=state, hooks=SatelliteHooks(mute=muted.append, wake_words=chosen.append,
                                                                             volume=volumes.append))
        client = await connected(server, key)
        try:
            info = await client.device_info()
            entities, _services = await client.list_entities_services()
            states: list[Any] = []
            client.subscribe_states(states.append)
            client.switch_command(1, True)
            client.media_player_command(3, volume=0.3)
            config = await client.get_voice_assistant_configuration(5)
            await client.set_voice_assistant_configuration(["hey_jarvis", "not-a-word"])
            for _ in range(100):
                if chosen and volumes and any(isinstance(s, SwitchState) and s.state for s in states):
                    break
                await asyncio.sleep(0.02)
            assert muted == [True] and chosen == [("hey_jarvis",)] and volumes == [pytest.approx(0.3)]
            assert any(isinstance(s, MediaPlayerEntityState) and s.volume == pytest.approx(0.3) for s in states)
            assert server.connected and server.voice is None
            return info, entities, states, config
        finally:
            await client.disconnect()
            await server.close()

    info, entities, states, config = run(go())
    assert info.name == "kitchen-speaker" and info.friendly_name == "Kitchen speaker" and info.suggested_area == "Kitchen"
    assert info.api_encryption_supported is (key is not None)
    flags = VoiceAssistantFeature(info.voice_assistant_feature_flags)
    for feature in ("VOICE_ASSISTANT", "SPEAKER", "API_AUDIO", "TIMERS", "ANNOUNCE", "START_CONVERSATION"):
        assert VoiceAssistantFeature[feature] in flags
    kinds = {type(e): e for e in entities}
    assert kinds[SwitchInfo].object_id == "mute" and kinds[BinarySensorInfo].object_id == "listening"
    assert MediaPlayerInfo in kinds
    assert any(isinstance(s, SwitchState) and s.state for s in states)
    assert [w.id for w in config.available_wake_words] == ["okay_nabu", "hey_jarvis"]
    assert config.active_wake_words == ["okay_nabu"]


def test_wrong_key_is_refused_and_the_server_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    wrong = base64.b64encode(os.urandom(32)).decode()

    async def go() -> Any:
        server = await started(KEY)
        try:
            bad = APIClient("127.0.0.1", server.port, None, noise_psk=wrong, client_info="HA with an old key")
            with pytest.raises(InvalidEncryptionKeyAPIError):
                await bad.connect(login=True)
            plain = APIClient("127.0.0.1", server.port, None, client_info="HA without a key")
            with pytest.raises(Exception, match="(?i)encrypt"):
                await plain.connect(login=True)
            good = await connected(server, KEY)
            info = await good.device_info()
            await good.disconnect()
            return info
        finally:
            await server.close()

    with caplog.at_level(logging.WARNING, logger="device.satellite.esphome_api"):
        info = run(go())
    assert info.name == "kitchen-speaker"
    assert any("refused Home Assistant" in r.getMessage() and "esphome-wrong-key" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("garbage", [b"\x07hello", b"\x00\xff\xff\xff\xff\xff", b"\x00\x05\x01\xff\xff\xff\xff\xff"],
                         ids=["preamble", "varint", "hello-that-does-not-parse"])
def test_malformed_frames_close_only_that_connection(garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> bytes:
        server = await started()
        client = await connected(server)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(garbage)
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 5)  # the server closes it: EOF
            writer.close()
            info = await client.device_info()  # the other connection is untouched
            assert info.name == "kitchen-speaker"
            return rest
        finally:
            await client.disconnect()
            await server.close()

    with caplog.at_level(logging.WARNING, logger="device.satellite.esphome_api"):
        assert run(go()) == b""
    assert any("closed the API connection" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "MP3"])
def test_voice_pipeline_spoken_command_and_tts_answer(fmt: str, media: MediaServer, tmp_path: Path) -> None:
    command = utterance(COMMAND)
    media.files["/tts/answer.wav"] = encoded(ANSWER, fmt)
    out = tmp_path / "speaker.wav"

    async def go() -> tuple[Any, FakeHa, list[object]]:
        events: list[object] = []

        async def emit(event: object) -> None:
            events.append(event)

        server = await started(KEY)
        player = Player(WavOutput(out))
        client = await connected(server, KEY)
        try:
            ha = FakeHa(client, media)
            turns = HaTurns(server, player, emit=emit)
            for _ in range(100):
                if server.voice is not None:
                    break
                await asyncio.sleep(0.02)
            outcome = await turns.turn(command)
            second = await turns.turn(command)  # the follow-up continues HA's conversation
            assert second.status == "ok"
            return outcome, ha, events
        finally:
            await client.disconnect()
            await server.close()
            player.close()

    outcome, ha, events = run(go())
    assert bytes(ha.audio) == command, "HA received exactly the utterance"
    assert ha.conversations == ["", "conv-1"]
    assert outcome.status == "ok" and outcome.user_text == COMMAND and outcome.reply_text == ANSWER
    assert outcome.followup_s > 0 and outcome.first_audio_ms is not None
    assert Transcript(COMMAND) in events
    speech = played(out)
    expected_ms = 1000 * len(utterance(ANSWER)) // 32000
    assert abs(outcome.played_ms - expected_ms) < 100
    assert len(speech) >= 2 * expected_ms * 16 * 0.95, "both answers reached the speaker"
    assert float(np.sqrt(np.mean(speech**2))) > 0.01


def test_ha_mode_through_the_assistant_and_ha_going_away(media: MediaServer, tmp_path: Path) -> None:
    """Every utterance to HA (no local recognizer); HA disconnects mid-pipeline → a clear spoken status."""
    command = utterance("tell me a joke")

    async def go() -> list[object]:
        events: list[object] = []

        async def emit(event: object) -> None:
            events.append(event)

        server = await started()
        player = Player(WavOutput(tmp_path / "speaker.wav"))
        client = await connected(server)
        try:
            FakeHa(client, media, on_audio_end=client.disconnect)
            turns = HaTurns(server, player, emit=emit)
            for _ in range(100):
                if server.voice is not None:
                    break
                await asyncio.sleep(0.02)
            assistant = Assistant(emit=emit, listen=lambda ms, why: None, decider=RouteDecider(), cloud=turns)
            await assistant.handle(VoiceStopped(2000, 0, command))
            await assistant.drain()
            await assistant.handle(VoiceStopped(9000, 7000, command))  # nobody connected any more
            await assistant.drain()
            return events
        finally:
            await server.close()
            player.close()

    events = run(go())
    replies = [e for e in events if isinstance(e, CloudReply)]
    says = [e for e in events if isinstance(e, Say)]
    assert [r.code for r in replies] == ["ha-unreachable", "ha-not-connected"]
    assert all(r.status == "failed" for r in replies)
    assert says and all(s.text == "I can't reach Home Assistant." for s in says)


def test_announcement_and_timer_ring(media: MediaServer, tmp_path: Path) -> None:
    media.files["/chime.flac"] = encoded("ding", "FLAC")
    media.files["/dinner.mp3"] = encoded("Dinner is ready.", "MP3")
    out = tmp_path / "speaker.wav"

    async def go() -> tuple[Any, Any, list[object], list[HaTimer]]:
        events: list[object] = []
        timers: list[HaTimer] = []

        async def emit(event: object) -> None:
            events.append(event)

        server = await started(KEY)
        player = Player(WavOutput(out))
        client = await connected(server, KEY)
        try:
            listened: list[bool] = []
            turns = HaTurns(server, player, emit=emit, listen=lambda: listened.append(True))

            async def timer(t: HaTimer) -> None:
                timers.append(t)
                await turns.ring(t)

            server.hooks = SatelliteHooks(announce=server.hooks.announce, timer=timer)
            done = await client.send_voice_assistant_announcement_await_response(
                media.url("/dinner.mp3"), 20, text="Dinner is ready.", preannounce_media_id=media.url("/chime.flac"))
            missing = await client.send_voice_assistant_announcement_await_response(media.url("/nope.mp3"), 20)
            assert listened == []
            ask = await client.send_voice_assistant_announcement_await_response(
                media.url("/chime.flac"), 20, start_conversation=True)
            assert ask.success and listened == [True], "an announcement that asks opens the microphone"
            T = VoiceAssistantTimerEventType
            client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_STARTED, "t1", "pasta", 600, 600, True)
            client.send_voice_assistant_timer_event(T.VOICE_ASSISTANT_TIMER_FINISHED, "t1", "pasta", 600, 0, False)
            for _ in range(100):
                if len(timers) == 2:
                    break
                await asyncio.sleep(0.02)
            return done, missing, events, timers
        finally:
            await client.disconnect()
            await server.close()
            player.close()

    done, missing, events, timers = run(go())
    assert done.success is True and missing.success is False
    assert [t.kind for t in timers] == ["started", "finished"] and timers[1].name == "pasta"
    assert Say(prompt="timer", text="The pasta timer is done.") in events
    expected = (len(utterance("ding")) + len(utterance("Dinner is ready."))) // 2
    assert len(played(out)) >= expected * 0.95


def test_doctor_sees_home_assistant_and_the_listening_sensor(tmp_path: Path) -> None:
    from aioesphomeapi.model import BinarySensorState

    from device.events import Detection
    from device.satellite.health import check_esphome, status_path
    from device.settings import settings_from_dict

    async def go() -> tuple[list[Any], list[str]]:
        server = await started(status_file=None)
        settings = settings_from_dict({"device": {"state_dir": str(tmp_path)},
                                       "esphome": {"enabled": True, "port": server.port}})
        server.status_file = status_path(settings)
        checks = [await asyncio.to_thread(check_esphome, settings)]
        client = await connected(server)
        states: list[Any] = []
        client.subscribe_states(states.append)
        FakeHa(client, None)
        await asyncio.sleep(0.2)
        checks.append(await asyncio.to_thread(check_esphome, settings))
        await server.observe(Detection("okay_nabu", 0.9, 1000))
        await server.observe(VoiceStopped(3000, 1000, b""))
        for _ in range(100):
            if sum(isinstance(s, BinarySensorState) for s in states) >= 3:
                break
            await asyncio.sleep(0.02)
        listening = [s.state for s in states if isinstance(s, BinarySensorState)]
        await client.disconnect()
        await asyncio.sleep(0.2)
        checks.append(await asyncio.to_thread(check_esphome, settings))
        await server.close()
        checks.append(await asyncio.to_thread(check_esphome, settings))
        return checks, [str(x) for x in listening]

    checks, listening = run(go())
    assert [c.status for c in checks] == ["warn", "ok", "warn", "fail"], checks
    assert "voice pipeline from 127.0.0.1" in checks[1].detail
    assert "not connected" in checks[2].detail
    assert listening == ["False", "True", "False"]
    assert check_esphome(settings_from_dict({})).status == "skip"


def test_encryption_key_must_be_32_bytes_of_base64() -> None:
    from device.errors import ConfigError
    from device.settings import settings_from_dict

    assert settings_from_dict({"esphome": {"encryption_key": KEY}}).esphome.encryption_key == KEY
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="encryption_key"):
            settings_from_dict({"esphome": {"encryption_key": bad}})


def test_zeroconf_announces_esphomelib() -> None:
    from zeroconf import Zeroconf

    async def go() -> Any:
        server = EsphomeServer(EsphomeSettings(enabled=True, port=0, encryption_key=KEY), "zc-speaker-test")
        await server.start("127.0.0.1", announce=True)
        try:
            if server._zeroconf is None:
                pytest.skip("no multicast interface in this sandbox")
            zc = server._zeroconf.zeroconf
            return await asyncio.to_thread(Zeroconf.get_service_info, zc, "_esphomelib._tcp.local.",
                                           "zc-speaker-test._esphomelib._tcp.local.", 3000)
        finally:
            await server.close()

    info = run(go())
    assert info is not None and info.port > 0
    assert info.properties[b"api_encryption"] == b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"


def test_ha_error_and_barge_in(media: MediaServer, tmp_path: Path) -> None:
    """HA's pipeline error → its prompt; a wake word during HA's answer stops it and HA's run."""
    media.files["/tts/answer.wav"] = encoded(ANSWER, "WAV")
    command = utterance(COMMAND)

    async def go() -> tuple[Any, Any, int, float, FakeHa, list[object]]:
        events: list[object] = []

        async def emit(event: object) -> None:
            events.append(event)

        server = await started()
        player = Player(WavOutput(tmp_path / "speaker.wav", realtime=True))
        client = await connected(server)
        try:
            async def no_text() -> None:
                E = VoiceAssistantEventType
                client.send_voice_assistant_event(E.VOICE_ASSISTANT_RUN_START, None)
                client.send_voice_assistant_event(E.VOICE_ASSISTANT_ERROR, {"code": "stt-no-text-recognized", "message": "No text recognized"})
                client.send_voice_assistant_event(E.VOICE_ASSISTANT_RUN_END, None)

            ha = FakeHa(client, media, on_audio_end=no_text)
            turns = HaTurns(server, player, emit=emit)
            for _ in range(100):
                if server.voice is not None:
                    break
                await asyncio.sleep(0.02)
            failed = await turns.turn(command)
            ha.on_audio_end = ha.answer
            turn = asyncio.create_task(turns.turn(command))
            for _ in range(500):
                if player.played_ms >= 500:
                    break
                await asyncio.sleep(0.02)
            heard = await turns.interrupt("wake")
            t0 = asyncio.get_running_loop().time()
            interrupted = await turn
            ended_after = asyncio.get_running_loop().time() - t0
            await asyncio.sleep(0.2)
            return failed, interrupted, heard, ended_after, ha, events
        finally:
            await client.disconnect()
            await server.close()
            player.close()

    failed, interrupted, heard, ended_after, ha, events = run(go())
    assert failed.status == "failed" and failed.code == "ha-stt-no-text-recognized" and failed.prompt == "not_understood"
    assert any(getattr(e, "code", None) == "ha-stt-no-text-recognized" for e in events)
    assert interrupted.status == "interrupted"
    assert 500 <= heard < 1000 * len(utterance(ANSWER)) // 32000
    assert ended_after < 0.5
    assert ha.aborted == 1, "HA was told to stop its pipeline"
