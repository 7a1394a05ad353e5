"""What the LEDs show: listening after the wake word, thinking while the answer is worked out,
speaking while it asks for a confirmation, an error blink when something failed, off when the turn is over; muted above everything.

`next_pattern` is the pure decision; `LedIndicator` holds the state and drives the HAL LEDs. It
is also the `Leds` the mute switch drives, so mute and the turn never fight over the LED.
"""

from __future__ import annotations

from device.events import (
    CloudReply,
    Detection,
    Error,
    ListenTimeout,
    Spoke,
    StartListening,
    ToolResult,
    VoiceStopped,
)
from hal.leds import LedPattern, Leds


def next_pattern(event: object, current: LedPattern) -> LedPattern:
    """The turn's pattern after `event` (mute is applied by the caller)."""
    match event:
        case Detection() | StartListening():
            return LedPattern.LISTENING
        case VoiceStopped():
            return LedPattern.THINKING
        case Error():
            return LedPattern.ERROR
        case ToolResult(status="needs_confirmation"):
            return LedPattern.SPEAKING  # asking "are you sure?"; StartListening follows
        case ToolResult(status="ok") | CloudReply(status="ok") | ListenTimeout():
            return LedPattern.OFF
        case ToolResult() | CloudReply():
            return LedPattern.ERROR
        case Spoke() if current is LedPattern.THINKING:
            return LedPattern.OFF  # a local answer (or a refusal) was spoken: the turn is over
        case _:
            return current


class LedIndicator:
    def __init__(self, leds: Leds) -> None:
        self._leds = leds
        self._turn = LedPattern.OFF
        self._muted = False
        self._shown: LedPattern | None = None
        self._update()

    @property
    def pattern(self) -> LedPattern:
        return LedPattern.MUTED if self._muted else self._turn

    def handle(self, event: object) -> None:
        self._turn = next_pattern(event, self._turn)
        self._update()

    def show(self, pattern: LedPattern) -> None:
        """The mute switch's view of the LEDs: MUTED or OFF."""
        self._muted = pattern is LedPattern.MUTED
        if not self._muted:
            self._turn = LedPattern.OFF
        self._update()

    def close(self) -> None:
        self._leds.close()

    def _update(self) -> None:
        # Only on a change: a sysfs write per event would be wasted work on the audio path.
        if self.pattern is not self._shown:
            self._shown = self.pattern
            self._leds.show(self.pattern)
