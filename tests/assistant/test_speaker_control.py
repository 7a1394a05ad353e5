"""Volume and mute by voice, the wake chime and barge-in over the device's own voice.

What counts as a speaker command is understood by the language (tests/intent/test_language.py)."""

from __future__ import annotations

import pytest

from device.events import Detection, Say, SpeakerControl, Spoke
from device.voice.mute import MuteSwitch
from device.voice.output import VoiceOutput
from device.voice.prompts import PromptBundle
from device.voice.speaker import DeviceVoice
from hal.player import NullOutput, Player


class Harness:
    def __init__(self) -> None:
        self.player = Player(NullOutput(realtime=False))
        self.mute = MuteSwitch(False)
        self.reported: list[object] = []
        voice = DeviceVoice(self.player, PromptBundle(None))

        async def report(event: object) -> None:
            self.reported.append(event)

        self.output = VoiceOutput(voice, self.player, self.mute, report)


async def test_volume_and_mute_by_voice() -> None:
    h = Harness()
    await h.output.handle(SpeakerControl("volume_set", 4))
    assert h.player.volume == pytest.approx(0.4)
    await h.output.handle(SpeakerControl("volume_step", 2))
    assert h.player.volume == pytest.approx(0.6)
    await h.output.handle(SpeakerControl("mute"))
    assert h.mute.muted and h.mute.state.source == "voice"
    assert [e.prompt for e in h.reported if isinstance(e, Spoke)] == ["ok", "ok", "muted"]
    h.player.close()


async def test_wake_word_stops_our_voice_then_chimes() -> None:
    h = Harness()
    await h.output.handle(Say(text=None, prompt="offline"))
    await h.output.handle(Detection("okay_nabu", 0.97, 1000))
    spoke = [e for e in h.reported if isinstance(e, Spoke)]
    assert [e.prompt for e in spoke] == ["offline", "wake"]
    assert all(e.duration_ms > 0 for e in spoke)
    h.player.close()


async def test_barge_in_cuts_our_own_speech_short() -> None:
    import asyncio
    import time

    import numpy as np

    h = Harness()
    h.player.close()
    h.player = Player(NullOutput(realtime=True))  # plays at the real rate, like a speaker
    h.output = VoiceOutput(DeviceVoice(h.player, PromptBundle(None)), h.player, h.mute, h.output._report)  # noqa: SLF001
    h.player.play_audio(0.3 * np.sin(np.arange(3 * 16000, dtype=np.float32) * 0.1))  # 3 s of "speech"
    await asyncio.sleep(0.2)
    start = time.monotonic()
    await h.output.handle(Detection("okay_nabu", 0.97, 1000))
    assert await asyncio.to_thread(h.player.drain, 5.0)
    remaining = time.monotonic() - start
    chime = [e for e in h.reported if isinstance(e, Spoke) and e.prompt == "wake"][0]
    # Only the chime is left to play, not the ~2.8 s of speech that was still queued.
    assert remaining < chime.duration_ms / 1000 + 0.5 < 2.0
    h.player.close()
