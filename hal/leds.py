"""Status LEDs: the interface the device drives, and the no-op used where there is no hardware."""

from __future__ import annotations

import enum
from typing import Protocol


class LedPattern(enum.Enum):
    OFF = "off"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    ERROR = "error"


class Leds(Protocol):
    def show(self, pattern: LedPattern) -> None: ...

    def close(self) -> None: ...


class NullLeds:
    """No LED hardware: remembers the last pattern (for `doctor` and tests) and does nothing."""

    def __init__(self) -> None:
        self.pattern = LedPattern.OFF

    def show(self, pattern: LedPattern) -> None:
        self.pattern = pattern

    def close(self) -> None:
        pass
