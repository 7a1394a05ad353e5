"""TimerRinger: the asyncio edge that rings the book's finished timers.

It asks the book what is due at the next deadline, at least every `poll_s` (the wall clock may be
stepped under it), and at once after `poke()` (the service pokes after a change that brings a
deadline nearer). Each finished timer is passed to `ring(timer)`: the service starts its earcon loop
(or keeps it going) and may say the timer's name. `stop_ring()` ("stop") ends the ring through
`stop()`, and so does the cap, so a speaker in an empty house doesn't ring for ever.

Given a `steady` clock too (one that never jumps: CLOCK_BOOTTIME, which also counts a suspend), it
notices the wall clock being stepped (NTP on a board without an RTC) and tells the book
(`TimerBook.clock_stepped`). The service takes its `now` for book calls from `ringer.now()`, so a
step is noticed before a timer is set on the new clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .book import TimerBook
from .view import Timer

_LOGGER = logging.getLogger(__name__)

RING_CAP_S = 300.0
POLL_S = 1.0
# Below this, a change of wall minus steady time is drift being slewed, not a step.
STEP_S = 2.0


class TimerRinger:
    def __init__(
        self,
        book: TimerBook,
        *,
        clock: Callable[[], float],
        ring: Callable[[Timer], None],
        stop: Callable[[], None],
        ring_cap_s: float = RING_CAP_S,
        poll_s: float = POLL_S,
        steady: Callable[[], float] | None = None,
    ) -> None:
        self._book = book
        self._clock = clock
        self._ring = ring
        self._stop = stop
        self._cap = ring_cap_s
        self._poll = poll_s
        self._ringing_for: list[Timer] = []
        self._since = 0.0
        self._wake = asyncio.Event()
        self._steady = steady
        self._offset: float | None = None

    @property
    def ringing(self) -> bool:
        return bool(self._ringing_for)

    @property
    def ringing_for(self) -> tuple[Timer, ...]:
        """The finished timers the current ring is for, oldest first."""
        return tuple(self._ringing_for)

    def now(self) -> float:
        """The wall clock, after moving the book's deadlines if it was stepped since the last look."""
        now = self._clock()
        if self._steady is None:
            return now
        offset = now - self._steady()
        if self._offset is not None and abs(offset - self._offset) > STEP_S:
            delta = offset - self._offset
            moved = self._book.clock_stepped(delta)
            _LOGGER.warning("wall clock stepped by %+.1f s; moved %s timer deadline(s) with it", delta, moved)
            if self._ringing_for:
                self._since += delta
        self._offset = offset
        return now

    def check(self) -> list[Timer]:
        """Ring for what is due now, or end a ring that reached the cap; returns the timers rung."""
        now = self.now()
        done = self._book.due(now)
        for timer in done:
            self._ringing_for.append(timer)
            self._call(self._ring, timer)
        if done:
            # A new finish restarts the cap: that timer deserves its full ring too.
            self._since = now
        elif self._ringing_for and now - self._since >= self._cap:
            _LOGGER.info("timer ring stopped after %.0f s with nobody to stop it", now - self._since)
            self._end()
        return done

    def stop_ring(self) -> bool:
        """End the ring ("stop"); False when nothing was ringing, so the caller can treat "stop" otherwise."""
        if not self._ringing_for:
            return False
        self._end()
        return True

    def poke(self) -> None:
        """Look at the book now rather than at the next planned check."""
        self._wake.set()

    async def run(self) -> None:
        """Ring timers until cancelled; a ring still going at cancellation is stopped."""
        try:
            while True:
                self.check()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._delay())
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            self.stop_ring()

    def _delay(self) -> float:
        now = self._clock()
        waits = [self._poll]
        deadline = self._book.next_deadline()
        if deadline is not None:
            waits.append(deadline - now)
        if self._ringing_for:
            waits.append(self._since + self._cap - now)
        return max(0.0, min(waits))

    def _end(self) -> None:
        self._ringing_for.clear()
        self._call(self._stop)

    def _call(self, callback: Callable[..., None], *args: Timer) -> None:
        # A failing earcon must not stop the timers behind it from ringing.
        try:
            callback(*args)
        except Exception:
            _LOGGER.exception("timer ring callback failed")
