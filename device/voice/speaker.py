"""The device's voice: `Say` events (a prompt id or a sentence) → audio → the one player.

Used by `voxhome say`, the demo and the service: prompts come from the prompt bundle (a tone if
one is missing), sentences from the local TTS; everything plays through `hal.player.Player`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from device.errors import AudioError
from device.events import Say, ToolResult
from device.voice.prompts import PromptBundle
from device.voice.tts import LocalTts
from hal.audio import SAMPLE_RATE
from hal.player import Player

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Spoken:
    """What was queued: the prompt or text, how long it speaks, and how long synthesis took."""

    prompt: str | None
    text: str | None
    duration_ms: int
    synth_ms: int


_RESULT_PROMPTS = {"ok": "done", "needs_confirmation": "are_you_sure", "unconfirmed": "unconfirmed"}


def say_for_result(result: ToolResult) -> Say:
    """The spoken reply to a tool result: its message when it has one (spoken by the TTS),
    else the prompt for its status (done, are you sure?, unconfirmed, error)."""
    return Say(prompt=_RESULT_PROMPTS.get(result.status, "error"), text=result.message or None)


class DeviceVoice:
    def __init__(self, player: Player, prompts: PromptBundle, tts: LocalTts | None = None) -> None:
        self._player = player
        self._prompts = prompts
        self._tts = tts

    def say(self, event: Say) -> Spoken:
        """Queue the prompt or sentence; a TTS failure falls back to the error earcon."""
        synth_ms = 0
        if event.text is not None and self._tts is not None:
            try:
                speech = self._tts.speak(event.text)
                audio, synth_ms = speech.audio, speech.synth_ms
            except AudioError as err:
                _LOGGER.warning("can't speak %r: %s", event.text[:40], err.message)
                audio = self._prompts.audio("error")
        else:
            audio = self._prompts.audio(event.prompt or "done")
        self._player.play_audio(audio)
        self._player.flush()
        return Spoken(event.prompt, event.text, len(audio) * 1000 // SAMPLE_RATE, synth_ms)

    def unknown_device(self, name: str) -> Spoken:
        audio: np.ndarray = self._prompts.unknown_device(name)
        self._player.play_audio(audio)
        self._player.flush()
        return Spoken("unknown_device", name, len(audio) * 1000 // SAMPLE_RATE, 0)
