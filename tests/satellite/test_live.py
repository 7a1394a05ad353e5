"""The live stream (mode 'ha'): over the real front end HA gets exactly the device's utterance,
most of it before the endpoint, and nothing of the wake word; with HA's own client, the runs a
follow-up nobody answers and a barge-in leave behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from device.bench.speech import concat, silence, synthesize
from device.events import Detection, ListenTimeout, SpeechProbability, StartListening, VoiceStopped
from device.listening.frontend import Frontend
from device.satellite.live import SpokenAudio
from device.settings import settings_from_dict
from hal.source import FileSource

from .conftest import MediaServer


def stream(frontend: Frontend, path: Path, follow_up_at_ms: int | None = None) -> list[tuple[bytes, bytes, VoiceStopped]]:
    """Run the file through the front end; per utterance (streamed before the endpoint, the tail, its VoiceStopped)."""
    live = SpokenAudio(frontend.pipeline.backlog, 0.5)
    out: list[tuple[bytes, bytes, VoiceStopped]] = []
    before = bytearray()
    for chunk in FileSource(path).frames():
        events = frontend.process(chunk)
        if follow_up_at_ms is not None and chunk.timestamp_ms >= follow_up_at_ms:
            events = frontend.pipeline.feed(StartListening(chunk.timestamp_ms, 4000)) + events
            follow_up_at_ms = None
        for event in events:
            match event:
                case Detection() | StartListening():
                    live.begin(event)
                    before.clear()
                case SpeechProbability():
                    before += live.window(event)
                case VoiceStopped():
                    out.append((bytes(before), live.end(event), event))
                case ListenTimeout():
                    raise AssertionError("nobody spoke")
    return out


@pytest.mark.parametrize("gap_s", [0.4, 0.0], ids=["pause-after-the-wake-word", "spoken-straight-on"])
def test_ha_hears_the_utterance_as_it_is_spoken(gap_s: float, tmp_path: Path) -> None:
    command = synthesize("what is the weather like tomorrow")
    path = tmp_path / "turn.wav"
    soundfile.write(str(path), concat(silence(1.0), synthesize("okay nabu"), silence(gap_s), command, silence(1.5),
                                      command, silence(1.5)), 16000)
    frontend = Frontend.from_settings(settings_from_dict({}))
    try:
        # The second command is a follow-up: listening opens without a wake word after the first.
        turns = stream(frontend, path, follow_up_at_ms=round(1000 * (1.0 + len(synthesize("okay nabu")) / 16000
                                                                    + gap_s + len(command) / 16000 + 1.2)))
    finally:
        frontend.close()
    assert len(turns) == 2
    for before, tail, stopped in turns:
        assert before + tail == stopped.audio, "HA got exactly what the device read, nothing twice, no gap"
        # Only the endpointer's silence (500 ms) and the last VAD windows wait for the endpoint.
        assert len(tail) / 32 < 700, len(tail) / 32
        assert len(before) / 32000 > 0.8 * len(command) / 16000
    first = np.frombuffer(turns[0][2].audio, "<i2")
    assert len(first) / 16000 < gap_s + len(command) / 16000 + 0.8, "the wake word is not in it"


def test_live_runs_end_when_nobody_speaks_and_after_a_barge_in(media: MediaServer, tmp_path: Path) -> None:
    """A follow-up nobody answers aborts HA's run; a wake word during HA's answer opens the next
    stream once that turn has ended (the assistant interrupts it), with all the audio since the wake."""
    import asyncio

    from device.events import AudioChunk
    from device.satellite.pipeline import HaTurns
    from hal.player import Player, WavOutput

    from .conftest import encoded, utterance
    from .test_esphome import ANSWER, FakeHa, connected, started

    media.files["/tts/answer.wav"] = encoded(ANSWER, "WAV")
    said = utterance("turn on the radio")
    heard: list[AudioChunk] = []

    async def go() -> tuple[FakeHa, Any, Any]:
        server = await started()
        player = Player(WavOutput(tmp_path / "speaker.wav"))
        client = await connected(server)
        try:
            hold = asyncio.Event()

            async def slow() -> None:
                await hold.wait()

            ha = FakeHa(client, media, on_audio_end=slow)
            turns = HaTurns(server, player, live=SpokenAudio(lambda: list(heard), 0.5))
            for _ in range(100):
                if server.voice is not None:
                    break
                await asyncio.sleep(0.02)
            await turns.observe(StartListening(500, 4000))
            await turns.observe(ListenTimeout(4500))
            for _ in range(100):
                if ha.aborted:
                    break
                await asyncio.sleep(0.02)
            assert ha.aborted == 1 and len(ha.conversations) == 1, "nobody spoke: HA's run was aborted"
            first = asyncio.create_task(turns.turn(said))  # HA takes the audio, then keeps its answer back
            for _ in range(250):
                if len(ha.audio) >= len(said):
                    break
                await asyncio.sleep(0.02)
            await turns.observe(Detection("okay_nabu", 0.9, 10_000, end_ms=9_900))
            interrupted = await asyncio.wait_for(asyncio.shield(first), 0.05) if first.done() else None
            assert interrupted is None, "the wake word alone does not end the turn; the assistant does"
            await turns.interrupt("wake")
            barged = await first
            ha.on_audio_end = ha.answer
            for i, at in enumerate(range(9_500, 11_900, 10)):  # what the front end heard since before the wake
                heard.append(AudioChunk(said[i * 320:(i + 1) * 320] or bytes(320), at))
            for at in range(9_500, 11_900 - 32, 32):  # the word, the pause after it (windows from 9 916 on), the command
                p = 0.9 if at < 9_900 or at >= 10_000 else 0.0
                await turns.observe(SpeechProbability(at, 32, p))
            await turns.observe(VoiceStopped(11_900, 9_916, b"".join(c.audio for c in heard)[416 * 32:]))
            answered = await turns.turn(b"")
            return ha, barged, answered
        finally:
            await client.disconnect()
            await server.close()
            player.close()

    ha, barged, answered = asyncio.run(asyncio.wait_for(go(), 30))
    assert barged.status == "interrupted"
    assert len(ha.conversations) == 3, "the barge-in's stream is HA's third run"
    assert bytes(ha.audio) == b"".join(c.audio for c in heard)[416 * 32:], "from the cut (9 916 ms) to the endpoint"
    assert answered.status == "ok" and answered.reply_text == ANSWER


def test_ha_going_away_while_the_command_streams(media: MediaServer, tmp_path: Path) -> None:
    """HA disconnects while the user is still speaking: the turn at the endpoint says so."""
    import asyncio

    from device.events import AudioChunk
    from device.satellite.pipeline import UNREACHABLE, HaTurns
    from hal.player import Player, WavOutput

    from .test_esphome import FakeHa, connected, started

    heard = [AudioChunk(bytes(320), at) for at in range(1_000, 3_000, 10)]

    async def go() -> tuple[int, Any]:
        server = await started()
        player = Player(WavOutput(tmp_path / "speaker.wav"))
        client = await connected(server)
        try:
            ha = FakeHa(client, media)
            turns = HaTurns(server, player, live=SpokenAudio(lambda: heard, 0.5))
            for _ in range(100):
                if server.voice is not None:
                    break
                await asyncio.sleep(0.02)
            await turns.observe(StartListening(1_000, 4000))
            for at in range(1_000, 2_000, 32):
                await turns.observe(SpeechProbability(at, 32, 0.9))
                await asyncio.sleep(0.005)
            got = len(ha.audio)
            await client.disconnect()
            for _ in range(100):
                if server.voice is None:
                    break
                await asyncio.sleep(0.02)
            for at in range(2_000, 2_900, 32):
                await turns.observe(SpeechProbability(at, 32, 0.9))
            await turns.observe(VoiceStopped(2_900, 1_000, b"".join(c.audio for c in heard)[: 1900 * 32]))
            return got, await turns.turn(b"")
        finally:
            await server.close()
            player.close()

    got, outcome = asyncio.run(asyncio.wait_for(go(), 30))
    assert got > 0, "HA was hearing the command before it left"
    assert outcome.status == "failed" and outcome.code == "ha-unreachable" and outcome.text == UNREACHABLE
