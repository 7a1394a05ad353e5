"""The real service (`voxhome run --audio <spoken turns> --realtime`) with `[esphome] enabled`, and
HA's own client (aioesphomeapi.APIClient) on the other side: entities, the voice assistant, the
spoken command's audio arriving at HA while it is spoken (mode 'ha') or after the device's own
understanding passed it on (mode 'local-first'), HA's pipeline events and a TTS URL from a local
HTTP server, and the answer played through ALSA (the `file` plugin records the playback PCM).
The faults as a running speaker meets them: a wrong encryption key is refused with one clear log
line while local commands keep working; HA going away mid-pipeline → "I can't reach Home
Assistant", and the next wake word is heard and served locally."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from aioesphomeapi import APIClient
from aioesphomeapi.core import InvalidEncryptionKeyAPIError
from aioesphomeapi.model import BinarySensorInfo, BinarySensorState, MediaPlayerInfo, SwitchInfo
from aioesphomeapi.model import VoiceAssistantEventType as E

from device.bench.speech import concat, silence, synthesize
from device.sim.broker import Mosquitto
from tests.home.conftest import SimHome

from .conftest import MediaServer

ROOT = Path(__file__).resolve().parents[2]
KEY = base64.b64encode(bytes(range(32))).decode()
TONE_HZ = 880.0
TONE_S = 1.2
WEATHER = "what is the weather like tomorrow"


def tone_wav() -> bytes:
    """HA's TTS answer: a tone nothing else the speaker plays contains, as a 22.05 kHz WAV."""
    import io

    t = np.arange(int(22050 * TONE_S)) / 22050
    out = io.BytesIO()
    soundfile.write(out, 0.5 * np.sin(2 * np.pi * TONE_HZ * t), 22050, format="WAV")
    return out.getvalue()


def tone_seconds(raw: Path) -> float:
    """How long the speaker played HA's tone (50 ms frames whose energy is nearly all at TONE_HZ)."""
    audio = np.frombuffer(raw.read_bytes(), "<i2").astype(np.float32) / 32768 if raw.exists() else np.zeros(0)
    n = 800
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
    band = spectrum[:, int((TONE_HZ - 60) * n / 16000):int((TONE_HZ + 60) * n / 16000) + 1].sum(axis=1)
    loud = spectrum.sum(axis=1) > 1e-3
    return float(np.sum(loud & (band > 0.8 * spectrum.sum(axis=1)))) * n / 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ha:
    """HA's esphome assist_satellite side: every run's audio with its arrival times, then events."""

    client: APIClient
    media: MediaServer
    runs: list[dict[str, Any]] = field(default_factory=list)
    on_end: Callable[[], Awaitable[None]] | None = None

    def subscribe(self) -> None:
        self.client.subscribe_voice_assistant(handle_start=self.start, handle_stop=self.stop, handle_audio=self.audio)

    async def start(self, conversation_id: str, flags: int, settings: Any, wake_word: str | None) -> int:
        self.runs.append({"started": time.monotonic(), "audio": bytearray(), "first": None, "end": None, "aborted": False})
        return 0

    async def audio(self, data: bytes, data2: bytes | None) -> None:
        run = self.runs[-1]
        run["first"] = run["first"] or time.monotonic()
        run["audio"] += data

    async def stop(self, abort: bool) -> None:
        run = self.runs[-1]
        run["end"], run["aborted"] = time.monotonic(), abort
        if abort:
            return
        if self.on_end is not None:
            await self.on_end()
            return
        send = self.client.send_voice_assistant_event
        send(E.VOICE_ASSISTANT_RUN_START, None)
        send(E.VOICE_ASSISTANT_STT_START, None)
        send(E.VOICE_ASSISTANT_STT_END, {"text": WEATHER})
        send(E.VOICE_ASSISTANT_INTENT_START, None)
        send(E.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "conv-1", "continue_conversation": "0"})
        send(E.VOICE_ASSISTANT_TTS_START, {"text": "Sunny tomorrow."})
        send(E.VOICE_ASSISTANT_TTS_END, {"url": self.media.url("/tts/answer.wav")})
        send(E.VOICE_ASSISTANT_RUN_END, None)


class Speaker:
    """`voxhome run` as a subprocess: its config, its ALSA speaker, its output and log."""

    def __init__(self, tmp: Path, audio: np.ndarray, esphome: str, mqtt: str = "[mqtt]\nenabled = false\n") -> None:
        self.port = free_port()
        self.raw = tmp / "speaker.raw"
        wav = tmp / "turns.wav"
        soundfile.write(str(wav), audio, 16000)
        asoundrc = tmp / "asoundrc"
        asoundrc.write_text(f'pcm.voxspk {{\n  type file\n  slave.pcm {{ type null }}\n  file "{self.raw}"\n  format "raw"\n}}\n')
        config = tmp / "config.toml"
        config.write_text(
            f"[device]\nid = 'hall'\nstate_dir = '{tmp / 'state'}'\n{mqtt}[cloud]\nenabled = false\n"
            "[audio.speaker]\nbackend = 'alsa'\ndevice = 'voxspk'\n"
            f"[esphome]\nenabled = true\nport = {self.port}\n{esphome}"
        )
        self.out, self.err = (tmp / "stdout.jsonl").open("w+"), (tmp / "stderr.log").open("w+")
        env = dict(os.environ, ALSA_CONFIG_PATH=str(asoundrc))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "device", "--config", str(config), "run", "--audio", str(wav), "--realtime"],
            cwd=ROOT, env=env, stdout=self.out, stderr=self.err, text=True,
        )

    async def client(self, key: str | None = None, timeout_s: float = 240.0) -> APIClient:
        """HA's client, connected once the service opened its port (after the models loaded)."""
        end = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < end, "the service never opened its ESPHome port"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break
        client = APIClient("127.0.0.1", self.port, None, noise_psk=key, client_info="Home Assistant test", keepalive=60)
        await client.connect(login=True)
        return client

    async def wait(self, timeout_s: float = 120.0) -> int:
        end = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            assert time.monotonic() < end, "the service did not end at the end of its audio"
            await asyncio.sleep(0.1)
        return self.proc.returncode

    def events(self) -> list[dict[str, Any]]:
        self.out.seek(0)
        return [json.loads(line) for line in self.out.read().splitlines() if line.startswith("{")]

    def log(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def turn(text: str, after_s: float) -> np.ndarray:
    return concat(synthesize("okay nabu"), silence(0.4), synthesize(text), silence(after_s))


def test_ha_mode_streams_the_spoken_command_and_plays_has_answer(tmp_path: Path, media: MediaServer) -> None:
    media.files["/tts/answer.wav"] = tone_wav()
    command_s = len(synthesize(WEATHER)) / 16000
    speaker = Speaker(tmp_path, concat(silence(3.0), turn(WEATHER, 5.0)), "mode = 'ha'\n")

    async def go() -> tuple[Ha, list[Any], list[Any]]:
        client = await speaker.client()
        try:
            entities, _services = await client.list_entities_services()
            states: list[Any] = []
            client.subscribe_states(states.append)
            ha = Ha(client, media)
            ha.subscribe()
            assert await speaker.wait() == 0, speaker.log()[-3000:]
            return ha, entities, states
        finally:
            await client.disconnect()

    try:
        ha, entities, states = asyncio.run(asyncio.wait_for(go(), 400))
        log, events = speaker.log(), speaker.events()
    finally:
        speaker.close()
    assert {type(e) for e in entities} >= {SwitchInfo, BinarySensorInfo, MediaPlayerInfo}
    assert len(ha.runs) == 1, log[-3000:]
    run = ha.runs[0]
    heard_s = len(run["audio"]) / 32000
    # The device's utterance: the command, cut after the wake word, up to its endpoint (500 ms of silence).
    assert command_s - 0.4 < heard_s < command_s + 1.0, (heard_s, command_s)
    # Streamed as spoken: at real-time pacing the audio's arrival spans most of the command.
    assert run["end"] - run["first"] > 0.6 * command_s, (run["end"] - run["first"], command_s)
    assert not run["aborted"]
    assert media.requests == ["/tts/answer.wav"], "the speaker fetched HA's TTS URL"
    assert tone_seconds(speaker.raw) > 0.9 * TONE_S, "HA's answer was played through ALSA"
    listening = [s.state for s in states if isinstance(s, BinarySensorState)]
    assert True in listening and listening[-1] is False, listening  # HA's sensor followed wake and endpoint
    assert any(e.get("type") == "cloud_reply" and e.get("status") == "ok" for e in events), events


def test_local_first_wrong_key_and_ha_going_away(tmp_path: Path, media: MediaServer, mosquitto: Mosquitto) -> None:
    """Local commands stay local (HA hears nothing), the rest goes to HA after the device's reading;
    HA leaving mid-pipeline is said aloud and the speaker listens on."""
    media.files["/tts/answer.wav"] = tone_wav()
    audio = concat(silence(3.0), turn("turn on the kitchen light", 3.5), turn(WEATHER, 5.0),
                   turn("tell me a joke", 4.5), turn("turn off the kitchen light", 3.5))
    mqtt = f"[mqtt]\nhost = '{mosquitto.host}'\nport = {mosquitto.port}\n"
    home = SimHome(mosquitto)
    speaker = Speaker(tmp_path, audio, f"mode = 'local-first'\nencryption_key = '{KEY}'\n", mqtt=mqtt)

    async def go() -> Ha:
        wrong = base64.b64encode(os.urandom(32)).decode()
        with pytest.raises(InvalidEncryptionKeyAPIError):
            await speaker.client(wrong)
        client = await speaker.client(KEY)
        ha = Ha(client, media)
        ha.subscribe()
        while len(ha.runs) < 1 or ha.runs[0]["end"] is None:
            assert speaker.proc.poll() is None, speaker.log()[-3000:]
            await asyncio.sleep(0.05)
        ha.on_end = client.disconnect  # the next run: HA goes away once it has the audio
        assert await speaker.wait() == 0, speaker.log()[-3000:]
        return ha

    try:
        ha = asyncio.run(asyncio.wait_for(go(), 400))
        log, events = speaker.log(), speaker.events()
    finally:
        speaker.close()
        home.stop()
    refused = [line for line in log.splitlines() if "refused Home Assistant" in line]
    assert len(refused) == 1 and "esphome-wrong-key" in refused[0], log[-3000:]
    assert len(ha.runs) == 2, "the kitchen light commands never reached HA"
    weather = ha.runs[0]
    command_s = len(synthesize(WEATHER)) / 16000
    assert command_s - 0.4 < len(weather["audio"]) / 32000 < command_s + 1.0
    assert media.requests == ["/tts/answer.wav"] and tone_seconds(speaker.raw) > 0.9 * TONE_S
    tools = [e for e in events if e.get("type") == "tool_result"]
    assert [t["status"] for t in tools] == ["ok", "ok"], tools  # on, and off after HA went away
    replies = [e for e in events if e.get("type") == "cloud_reply"]
    assert [r["status"] for r in replies] == ["ok", "failed"], replies
    assert replies[1]["code"] == "ha-unreachable"
    says = [e for e in events if e.get("type") in ("say", "spoke")]
    assert any(s.get("text") == "I can't reach Home Assistant." for s in says), says
    wakes = [e for e in events if e.get("type") == "wake"]
    assert len(wakes) == 4, wakes
