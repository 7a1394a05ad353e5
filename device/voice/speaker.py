"""The device's voice: `Say` events (a prompt id or a sentence) → audio → the one player.

Used by `voxhome say`, the demo and the service: earcons come from the prompt bundle (a tone if
one is missing); sentences come from the voice (`device.voice.render`), streamed: each sentence is
queued as soon as it is synthesized, so the first plays while the rest are made. With a neural
voice the spoken prompts ("Are you sure?") are said by it too (cached after first use), so the
device speaks with one voice; the bundle's recording is their fallback. Everything plays through
`hal.player.Player`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from device.errors import AudioError, VoxError
from device.events import Say, ToolResult
from device.voice.prompts import PromptBundle, prompt_text
from device.voice.render import SpeechRenderer
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


SENTENCE_GAP_MS = 150
"""The pause between streamed sentences (each one's own silence is trimmed away)."""


class DeviceVoice:
    def __init__(self, player: Player, prompts: PromptBundle, tts: SpeechRenderer | None = None) -> None:
        self._player = player
        self._prompts = prompts
        self._tts = tts

    def say(self, event: Say) -> Spoken:
        """Queue the prompt or sentence(s); a voice failure falls back to the error earcon.

        `synth_ms` is the time until the first audio was queued (what the user waits for)."""
        if event.text is not None and self._tts is not None:
            return self._stream(event, event.text)
        text = prompt_text(event.prompt or "done")
        if text is not None and self._tts is not None and self._tts.neural:
            return self._stream(event, text, fallback=self._prompts.audio(event.prompt or "done"))
        audio = self._prompts.audio(event.prompt or "done")
        self._player.play_audio(audio)
        self._player.flush()
        return Spoken(event.prompt, event.text, len(audio) * 1000 // SAMPLE_RATE, 0)

    def _stream(self, event: Say, text: str, fallback: np.ndarray | None = None) -> Spoken:
        assert self._tts is not None
        queued = 0
        first_ms: int | None = None
        waited = 0
        gap = np.zeros(SAMPLE_RATE * SENTENCE_GAP_MS // 1000, np.float32)
        try:
            sentences = self._tts.sentences(text)
            for i, sentence in enumerate(sentences):
                speech = self._tts.render(sentence)
                waited += speech.synth_ms
                if first_ms is None:
                    first_ms = waited
                audio = speech.audio if i == len(sentences) - 1 else np.concatenate([speech.audio, gap])
                self._player.play_audio(audio)
                queued += len(audio)
        except AudioError as err:
            _LOGGER.warning("can't speak %r: %s", text[:40], err.message)
            if queued == 0:
                audio = fallback if fallback is not None else self._prompts.audio("error")
                self._player.play_audio(audio)
                queued = len(audio)
        except VoxError as err:  # a model that fails mid-answer: say what was made, then the earcon
            _LOGGER.warning("voice failed on %r: [%s] %s", text[:40], err.code, err.message)
            audio = fallback if fallback is not None and queued == 0 else self._prompts.audio("error")
            self._player.play_audio(audio)
            queued += len(audio)
        self._player.flush()
        return Spoken(event.prompt, event.text, queued * 1000 // SAMPLE_RATE, first_ms or 0)

    def unknown_device(self, name: str) -> Spoken:
        if self._tts is not None and self._tts.neural:
            return self._stream(Say(prompt="unknown_device", text=name), f"{prompt_text('unknown_device')} {name}.")
        audio: np.ndarray = self._prompts.unknown_device(name)
        self._player.play_audio(audio)
        self._player.flush()
        return Spoken("unknown_device", name, len(audio) * 1000 // SAMPLE_RATE, 0)
