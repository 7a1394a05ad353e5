"""The speaker's timers: a synchronous store driven by the clock value its caller passes in.

No method reads a clock: `now` is wall-clock seconds from the caller, so tests are exact and the
asyncio edge (`TimerRinger`) is the only place time passes. Deadlines are wall-clock rather than
monotonic because they must mean the same after a restart (a monotonic clock restarts at boot);
on a board without a real-time clock they read right once the clock is synced, and
`clock_stepped` keeps the time left of timers set before the sync. Use it from one thread (the
service's event loop): a change blocks it for the save's two fsyncs (median 12 ms on the dev box's disk).

Targeting follows Home Assistant's voice timers: a request narrows the timers by name, by area
and by the duration they were set for ("the five minute timer"); one left is the one meant, none
is `timer-not-found`, several is `timer-ambiguous` — except when the request named nothing, where
the most recently started is meant ("cancel the timer" right after setting one).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace

from device.errors import TimerError

from .store import Snapshot, TimerStore
from .view import Timer, TimerView, view

_LOGGER = logging.getLogger(__name__)

MAX_SECONDS = 24 * 3600
DEFAULT_LIMIT = 20
# Two durations count as the same "five minute timer" when they differ by less than this.
_SAME_DURATION_S = 0.5


class TimerBook:
    """Start, find, change and finish timers; with a store, every change is saved before returning."""

    def __init__(self, store: TimerStore | None = None, *, limit: int = DEFAULT_LIMIT) -> None:
        """Open the book, loading the store's timers first.

        A timer whose deadline passed while the service was down comes back running with a past
        deadline, so the first `due(now)` reports it, once; its `deadline` says how late it is.
        """
        self._store = store
        self._limit = limit
        snapshot = store.load() if store is not None else Snapshot()
        self._timers: dict[str, Timer] = {t.id: t for t in snapshot.timers}
        self._next_id = snapshot.next_id
        # Timers whose deadline was computed on this run's clock (see clock_stepped).
        self._this_run: set[str] = set()
        self.save_error: TimerError | None = None
        """The last save's failure, until a save succeeds (the timers still ring meanwhile)."""

    # -- changes -------------------------------------------------------------------------------

    def start(
        self, seconds: float, *, now: float, name: str | None = None, area: str | None = None
    ) -> Timer:
        _check_duration(seconds)
        if len(self._timers) >= self._limit:
            raise TimerError("timer-limit", f"there are already {self._limit} timers; cancel one first")
        timer = Timer(
            id=self._new_id(),
            start_seconds=float(seconds),
            created_at=now,
            name=_clean(name),
            area=_clean(area),
            deadline=now + seconds,
        )
        self._timers[timer.id] = timer
        self._this_run.add(timer.id)
        self._save()
        _LOGGER.info("timer %s started: %s s%s", timer.id, seconds, " (named)" if timer.name else "")  # no words in logs
        return timer

    def cancel(
        self, *, name: str | None = None, area: str | None = None, start_seconds: float | None = None
    ) -> Timer:
        timer = self.find(name=name, area=area, start_seconds=start_seconds)
        self._drop(timer)
        self._save()
        _LOGGER.info("timer %s cancelled", timer.id)
        return timer

    def cancel_all(self, *, area: str | None = None) -> list[Timer]:
        """Cancel every timer (in `area`, if given); returns them, maybe none."""
        gone = self.timers(area=area)
        for timer in gone:
            self._drop(timer)
        if gone:
            self._save()
            _LOGGER.info("cancelled %s timer(s)", len(gone))
        return gone

    def pause(
        self,
        *,
        now: float,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
    ) -> Timer:
        """Pause a running timer (only running ones are candidates)."""
        timer = self.find(name=name, area=area, start_seconds=start_seconds, active=True)
        return self._put(replace(timer, deadline=None, paused_left=timer.seconds_left(now)), "paused")

    def unpause(
        self,
        *,
        now: float,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
    ) -> Timer:
        """Resume a paused timer (only paused ones are candidates)."""
        timer = self.find(name=name, area=area, start_seconds=start_seconds, active=False)
        return self._put(replace(timer, deadline=now + timer.paused_left, paused_left=0.0), "resumed")

    def add_time(
        self,
        seconds: float,
        *,
        now: float,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
    ) -> Timer:
        """Add `seconds` (> 0) to a timer; the result may not exceed 24 hours."""
        _check_duration(seconds)
        timer = self.find(name=name, area=area, start_seconds=start_seconds)
        left = timer.seconds_left(now) + seconds
        if left > MAX_SECONDS:
            raise TimerError("timer-bad-duration", "a timer can run for at most 24 hours")
        return self._put(_with_left(timer, left, now), "increased")

    def remove_time(
        self,
        seconds: float,
        *,
        now: float,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
    ) -> Timer:
        """Take `seconds` (> 0) off a timer; taking off all that is left makes it due now."""
        _check_duration(seconds)
        timer = self.find(name=name, area=area, start_seconds=start_seconds)
        left = max(0.0, timer.seconds_left(now) - seconds)
        return self._put(_with_left(timer, left, now), "decreased")

    def due(self, now: float) -> list[Timer]:
        """The running timers whose deadline has come, soonest first; each is reported once (it leaves the book)."""
        done = sorted(
            (t for t in self._timers.values() if t.deadline is not None and t.deadline <= now),
            key=lambda t: (t.deadline, t.created_at),
        )
        for timer in done:
            self._drop(timer)
        if done:
            self._save()
            _LOGGER.info("timer(s) finished: %s", ", ".join(t.id for t in done))
        return done

    def clock_stepped(self, delta: float) -> int:
        """The wall clock jumped by `delta` s; keep the time left of the timers set on the old clock.

        A board without a real-time clock starts on a stale time until NTP steps it. A timer set
        before the step has a deadline on the stale clock, and would ring early (or late) by the
        step: those set or changed in this run move with it. Timers loaded from the file and not
        touched since keep their deadlines, which the run that saved them computed. Returns how many moved.
        """
        moved = 0
        for timer_id in self._this_run:
            timer = self._timers[timer_id]
            if timer.deadline is not None:
                self._timers[timer_id] = replace(timer, deadline=timer.deadline + delta)
                moved += 1
        if moved:
            self._save()
        return moved

    # -- reading -------------------------------------------------------------------------------

    def timers(
        self,
        *,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
        active: bool | None = None,
    ) -> list[Timer]:
        """The timers matching every given filter, oldest first."""
        wanted_name, wanted_area = _normal(name), _normal(area)
        found = []
        for timer in sorted(self._timers.values(), key=lambda t: t.created_at):
            if active is not None and timer.is_active != active:
                continue
            if wanted_name is not None and _normal(timer.name) != wanted_name:
                continue
            if wanted_area is not None and _normal(timer.area) != wanted_area:
                continue
            if start_seconds is not None and abs(timer.start_seconds - start_seconds) >= _SAME_DURATION_S:
                continue
            found.append(timer)
        return found

    def find(
        self,
        *,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
        active: bool | None = None,
    ) -> Timer:
        """The one timer a request means (see the module docstring), or a TimerError saying why not."""
        found = self.timers(name=name, area=area, start_seconds=start_seconds, active=active)
        targeted = _normal(name) is not None or _normal(area) is not None or start_seconds is not None
        if not found:
            raise TimerError("timer-not-found", _not_found(name, area, start_seconds, active))
        if len(found) > 1 and targeted:
            raise TimerError(
                "timer-ambiguous", f"{len(found)} timers match {_describe(name, area, start_seconds)}"
            )
        return found[-1]

    def status(
        self,
        now: float,
        *,
        name: str | None = None,
        area: str | None = None,
        start_seconds: float | None = None,
    ) -> list[TimerView]:
        """Views of the matching timers (all by default), oldest first; maybe none."""
        return [view(t, now) for t in self.timers(name=name, area=area, start_seconds=start_seconds)]

    def next_deadline(self) -> float | None:
        """The soonest deadline of a running timer (when the ringer must look next)."""
        return min((t.deadline for t in self._timers.values() if t.deadline is not None), default=None)

    def __len__(self) -> int:
        return len(self._timers)

    # -- inside --------------------------------------------------------------------------------

    def _new_id(self) -> str:
        while f"t{self._next_id}" in self._timers:
            self._next_id += 1
        timer_id = f"t{self._next_id}"
        self._next_id += 1
        return timer_id

    def _put(self, timer: Timer, what: str) -> Timer:
        self._timers[timer.id] = timer
        self._this_run.add(timer.id)
        self._save()
        _LOGGER.info("timer %s %s", timer.id, what)
        return timer

    def _drop(self, timer: Timer) -> None:
        del self._timers[timer.id]
        self._this_run.discard(timer.id)

    def _save(self) -> None:
        if self._store is None:
            return
        snapshot = Snapshot(
            timers=tuple(sorted(self._timers.values(), key=lambda t: t.created_at)), next_id=self._next_id
        )
        try:
            self._store.save(snapshot)
        except TimerError as err:
            # The change stands: the timer still rings while the service runs, it just won't
            # survive a restart. Refusing the timer over a full disk would be worse.
            if self.save_error is None:
                _LOGGER.error("%s: %s; timers won't survive a restart until a save succeeds", err.code, err)
            self.save_error = err
        else:
            if self.save_error is not None:
                _LOGGER.info("timers saved again")
            self.save_error = None


def _with_left(timer: Timer, left: float, now: float) -> Timer:
    if timer.is_active:
        return replace(timer, deadline=now + left)
    return replace(timer, paused_left=left)


def _check_duration(seconds: float) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise TimerError("timer-bad-duration", f"a timer's duration must be a number of seconds, not {seconds!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise TimerError(
            "timer-bad-duration", f"a timer runs for more than 0 seconds and at most 24 hours, not {seconds:g} s"
        )


def _clean(text: str | None) -> str | None:
    """The name as said, tidied for storage and answers; None when there is nothing left."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text or None


def _normal(text: str | None) -> str | None:
    """The form names are compared in: case-folded, single spaces, without a trailing "timer"."""
    cleaned = _clean(text)
    if cleaned is None:
        return None
    cleaned = re.sub(r"[\s.,!?]*\btimer$", "", cleaned.casefold()).strip(" .,!?")
    return cleaned or None


def _describe(name: str | None, area: str | None, start_seconds: float | None) -> str:
    parts = []
    if name is not None:
        parts.append(f"named {name!r}")
    if area is not None:
        parts.append(f"in {area!r}")
    if start_seconds is not None:
        parts.append(f"set for {start_seconds:g} s")
    return " ".join(parts) or "any"


def _not_found(name: str | None, area: str | None, start_seconds: float | None, active: bool | None) -> str:
    kind = {True: "running timer", False: "paused timer", None: "timer"}[active]
    if name is None and area is None and start_seconds is None:
        return f"there is no {kind}"
    return f"no {kind} {_describe(name, area, start_seconds)}"
