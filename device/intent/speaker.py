"""Commands for the speaker itself: volume and mute, understood before the home's commands."""

from __future__ import annotations

import re
from dataclasses import dataclass

from device.intent.numbers import words_to_digits
from device.intent.text import normalise_text

VOLUME_LEVELS = 10

_UP = re.compile(r"\b(volume up|turn (it |the volume )?up|louder|speak up|increase the volume|raise the volume)\b")
_DOWN = re.compile(r"\b(volume down|turn (it |the volume )?down|quieter|softer|lower the volume|decrease the volume)\b")
_SET = re.compile(r"\b(set|change|put)?\s*(the )?volume (to|at) (\d+)\b")
_MUTE = re.compile(r"\b(mute (yourself|the microphone|the mic)|stop listening|microphone off|turn off (the |your )?microphone)\b")


@dataclass(frozen=True, slots=True)
class SpeakerCommand:
    action: str
    """'volume_step', 'volume_set' or 'mute'."""
    value: int = 0


def speaker_command(text: str) -> SpeakerCommand | None:
    """'volume up' → step +1; 'set volume to 4' → level 4 of 10; 'mute yourself' → mute."""
    joined = " ".join(words_to_digits(normalise_text(text)))
    if match := _SET.search(joined):
        return SpeakerCommand("volume_set", max(0, min(VOLUME_LEVELS, int(match.group(4)))))
    if _UP.search(joined):
        return SpeakerCommand("volume_step", 1)
    if _DOWN.search(joined):
        return SpeakerCommand("volume_step", -1)
    if _MUTE.search(joined):
        return SpeakerCommand("mute", 1)
    return None
