"""The voice as an output of the event stream: what the device says and how its speaker behaves.

`Say` → a prompt or a spoken sentence through the one player; a wake word over the device's own
voice stops it at once (barge-in), then the wake chime; `SpeakerControl` → volume and mute.
Speaking runs in a worker thread (TTS takes a few milliseconds to tens of milliseconds), so the
audio loop never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from device.events import Detection, Interrupted, Say, SpeakerControl, Spoke
from device.voice.mute import MuteSwitch
from device.voice.speaker import DeviceVoice
from hal.player import Player

_LOGGER = logging.getLogger(__name__)


class VoiceOutput:
    def __init__(
        self,
        voice: DeviceVoice,
        player: Player,
        mute: MuteSwitch,
        report: Callable[[object], Awaitable[None]],
        *,
        chime: bool = True,
    ) -> None:
        self._voice = voice
        self._player = player
        self._mute = mute
        self._report = report
        self._chime = chime

    async def handle(self, event: object) -> None:
        match event:
            case Detection():
                # The user spoke over us: silence first (the cloud client does the same for its
                # reply), then acknowledge that we are listening.
                self._player.stop()
                if self._chime:
                    await self._say(Say(prompt="wake"))
            case Interrupted():
                self._player.stop()
            case Say():
                await self._say(event)
            case SpeakerControl(action="volume_step", value=value):
                level = self._player.step(value)
                _LOGGER.info("volume now %d", level)
                await self._say(Say(prompt="ok"))
            case SpeakerControl(action="volume_set", value=value):
                self._player.set_level(value)
                await self._say(Say(prompt="ok"))
            case SpeakerControl(action="mute"):
                await self._say(Say(prompt="muted"))
                self._mute.set(True, "voice")

    async def _say(self, say: Say) -> None:
        spoken = await asyncio.to_thread(self._voice.say, say)
        await self._report(Spoke(spoken.prompt, spoken.text, spoken.duration_ms, spoken.synth_ms))
