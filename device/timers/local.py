"""The speaker's timers as the assistant uses them: a timer intent in, a spoken answer out, and
the ring when one finishes.

One object owns the book (its file under the state directory), the ringer task and the ring
itself: an earcon repeated every few seconds with the timer's name spoken first, until "stop"
or the ringer's cap. Answers come from the language's response templates (HA's HassStartTimer,
HassTimerStatus, … render over our timer views), with a plain sentence when a template can't.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from device.errors import TimerError
from device.events import Say
from device.intent.responses import Responses
from device.timers.book import TimerBook
from device.timers.ringer import TimerRinger
from device.timers.slots import duration, target
from device.timers.store import TimerStore
from device.timers.view import Timer

_LOGGER = logging.getLogger(__name__)

RING_EVERY_S = 4.0
"""Seconds between two rings of the earcon while a finished timer waits for 'stop'."""

Emit = Callable[[object], Awaitable[None]]

_INTENTS = {"start": "HassStartTimer", "cancel": "HassCancelTimer", "cancel_all": "HassCancelAllTimers",
            "pause": "HassPauseTimer", "unpause": "HassUnpauseTimer", "status": "HassTimerStatus",
            "increase": "HassIncreaseTimer", "decrease": "HassDecreaseTimer"}


class LocalTimers:
    def __init__(self, state_dir: str | Path, *, emit: Emit, responses: Responses,
                 clock: Callable[[], float] = time.time,
                 steady: Callable[[], float] | None = lambda: time.clock_gettime(time.CLOCK_BOOTTIME)) -> None:
        self.book = TimerBook(TimerStore(Path(state_dir)))
        self._emit = emit
        self._responses = responses
        self._clock = clock
        self._ringing: asyncio.Task[None] | None = None
        # The steady clock tells an NTP step (wall clock jumps, boot time doesn't) from time passing.
        self.ringer = TimerRinger(self.book, clock=clock, ring=self._ring, stop=self._stop, steady=steady)

    async def run(self) -> None:
        await self.ringer.run()

    def stop_ring(self) -> bool:
        return self.ringer.stop_ring()

    def handle(self, op: str, values: Mapping[str, Any], *, area: str | None = None) -> Say:
        """Do what a timer intent asks; the spoken answer (errors are answers too)."""
        try:
            answer = self._handle(op, dict(values), area)
        except TimerError as err:
            _LOGGER.info("timer %s: [%s] %s", op, err.code, err.message)
            key = {"timer-not-found": "timer_not_found", "timer-ambiguous": "multiple_timers_matched"}.get(err.code)
            text = self._responses.error(key) if key else None
            return Say(prompt="error", text=text or f"{err.message[:1].upper()}{err.message[1:]}.")
        self.ringer.poke()
        return Say(prompt="done", text=answer)

    def _handle(self, op: str, values: dict[str, Any], area: str | None) -> str:
        now = self.ringer.now()
        aimed = target(values)
        intent = _INTENTS[op]
        if op == "start":
            seconds = duration(values)
            if seconds is None:
                raise TimerError("timer-bad-duration", "how long should the timer run?")
            timer = self.book.start(seconds, now=now, name=aimed.name, area=aimed.area or area)
            return self._say(intent, values, f"Timer set for {_spoken_duration(timer.start_seconds)}.")
        if op == "cancel":
            self.book.cancel(name=aimed.name, area=aimed.area, start_seconds=aimed.start_seconds)
            return self._say(intent, values, "Timer cancelled.")
        if op == "cancel_all":
            gone = self.book.cancel_all(area=aimed.area)
            return self._say(intent, {**values, "canceled": len(gone)}, f"Cancelled {len(gone)} timers.")
        if op == "pause":
            self.book.pause(now=now, name=aimed.name, area=aimed.area, start_seconds=aimed.start_seconds)
            return self._say(intent, values, "Timer paused.")
        if op == "unpause":
            self.book.unpause(now=now, name=aimed.name, area=aimed.area, start_seconds=aimed.start_seconds)
            return self._say(intent, values, "Timer resumed.")
        if op in ("increase", "decrease"):
            seconds = duration(values)
            if seconds is None:
                raise TimerError("timer-bad-duration", "by how much?")
            change = self.book.add_time if op == "increase" else self.book.remove_time
            change(seconds, now=now, name=aimed.name, area=aimed.area, start_seconds=aimed.start_seconds)
            return self._say(intent, values, "Timer updated.")
        views = self.book.status(now, name=aimed.name, area=aimed.area, start_seconds=aimed.start_seconds)
        fallback = "No timers." if not views else f"{_spoken_duration(views[0].total_seconds_left)} left."
        return self._say(intent, {**values, "timers": views}, fallback)

    def _say(self, intent: str, slots: dict[str, Any], fallback: str) -> str:
        return self._responses.intent(intent, "default", slots) or fallback

    # --- the ring -------------------------------------------------------------------------------

    def _ring(self, timer: Timer) -> None:
        if self._ringing is None or self._ringing.done():
            self._ringing = asyncio.get_running_loop().create_task(self._ring_loop(timer))

    async def _ring_loop(self, timer: Timer) -> None:
        name = timer.name
        await self._emit(Say(prompt="timer", text=f"Your {name} timer is done." if name else "Your timer is done."))
        while True:
            await asyncio.sleep(RING_EVERY_S)
            await self._emit(Say(prompt="timer"))

    def _stop(self) -> None:
        if self._ringing is not None:
            self._ringing.cancel()
            self._ringing = None


def _spoken_duration(seconds: float) -> str:
    h, m, s = int(seconds) // 3600, int(seconds) % 3600 // 60, int(seconds) % 60
    parts = [f"{v} {unit}{'' if v == 1 else 's'}" for v, unit in ((h, "hour"), (m, "minute"), (s, "second")) if v]
    return " and ".join(parts) or "0 seconds"

