"""Status LEDs: the interface the device drives, the Linux LED class backend, and the no-op.

The Linux LED class (/sys/class/leds/<name>/{brightness,trigger,delay_on,delay_off}) covers every
LED with a kernel driver: a Pi's ACT/PWR LEDs, GPIO LEDs from a device-tree overlay, many HATs.
Blinking is the kernel's `timer` trigger, so no thread of ours keeps time for it.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Protocol

from device.errors import HardwareError
from device.settings import LedSettings

_LOGGER = logging.getLogger(__name__)


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


BLINK_MS: dict[LedPattern, tuple[int, int]] = {
    LedPattern.THINKING: (100, 100),
    LedPattern.MUTED: (50, 1950),  # a short blink every 2 s: "deliberately off", not "dead"
    LedPattern.ERROR: (50, 50),
}
"""(on, off) milliseconds of the patterns that blink; LISTENING and SPEAKING are steady."""


class SysfsLed:
    """One LED of the Linux LED class. Write errors are logged once and never raised: an LED
    must not take the speaker down (the unit's sandbox or a missing udev rule may forbid it)."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        try:
            self._max = int((self._dir / "max_brightness").read_text().strip() or "1")
        except (OSError, ValueError) as err:
            raise HardwareError("led-missing", f"no LED at {self._dir}: {err}") from None
        self.pattern = LedPattern.OFF
        self._failed = False

    def _write(self, name: str, value: str) -> None:
        (self._dir / name).write_text(value)

    def show(self, pattern: LedPattern) -> None:
        self.pattern = pattern
        try:
            if pattern in BLINK_MS:
                on, off = BLINK_MS[pattern]
                self._write("trigger", "timer")  # creates delay_on/delay_off
                self._write("delay_on", str(on))
                self._write("delay_off", str(off))
            else:
                self._write("trigger", "none")
                self._write("brightness", "0" if pattern is LedPattern.OFF else str(self._max))
        except OSError as err:
            if not self._failed:
                _LOGGER.warning("LED %s not writable, patterns stay off: %s", self._dir.name, err)
                self._failed = True

    def close(self) -> None:
        self.show(LedPattern.OFF)


def open_leds(settings: LedSettings) -> Leds:
    """The configured LEDs; raises HardwareError when the configured LED doesn't exist."""
    if settings.backend == "sysfs":
        return SysfsLed(Path(settings.sysfs_root) / settings.name)
    return NullLeds()
