"""The mute switch: while muted the microphone path stops entirely (no frames reach wake/VAD).

Set from config (`voice.muted`), by voice ("mute"/"unmute" via the intent layer) or over MQTT;
every change is reported through the `report` callback (the service publishes it on the status
topic) and shown on the LEDs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from device.events import AudioChunk
from hal.leds import LedPattern, Leds, NullLeds

_LOGGER = logging.getLogger(__name__)

MuteSource = Literal["config", "voice", "mqtt", "button", "ha"]


@dataclass(frozen=True, slots=True)
class MuteState:
    muted: bool
    source: MuteSource

    def to_status(self) -> dict[str, object]:
        return {"muted": self.muted, "source": self.source}


class MuteSwitch:
    def __init__(
        self,
        muted: bool = False,
        leds: Leds | None = None,
        report: Callable[[MuteState], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._state = MuteState(muted, "config")
        self._leds = leds or NullLeds()
        self._report = report
        self._resumed = threading.Event()
        if not muted:
            self._resumed.set()
        self._leds.show(LedPattern.MUTED if muted else LedPattern.OFF)

    @property
    def state(self) -> MuteState:
        return self._state

    @property
    def muted(self) -> bool:
        return self._state.muted

    def set(self, muted: bool, source: MuteSource) -> bool:
        """Mute or unmute; True if that changed anything."""
        with self._lock:
            if self._state.muted == muted:
                return False
            self._state = MuteState(muted, source)
        _LOGGER.info("microphone %s (%s)", "muted" if muted else "unmuted", source)
        self._leds.show(LedPattern.MUTED if muted else LedPattern.OFF)
        if muted:
            self._resumed.clear()
        else:
            self._resumed.set()
        if self._report is not None:
            self._report(self._state)
        return True

    def handle_command(self, payload: str, source: MuteSource = "mqtt") -> bool:
        """An MQTT/voice command payload: 'ON'/'mute' mutes, 'OFF'/'unmute' unmutes."""
        word = payload.strip().lower()
        if word in ("on", "mute", "true", "1"):
            return self.set(True, source)
        if word in ("off", "unmute", "false", "0"):
            return self.set(False, source)
        _LOGGER.warning("ignoring mute command %r", payload[:40])
        return False

    def gate(self, frames: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
        """Pass mic frames through only while unmuted; muted frames are dropped, never buffered."""
        for frame in frames:
            if not self._state.muted:
                yield frame
