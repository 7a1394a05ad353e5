"""A timer's record, and the status view a spoken answer is rendered from.

The view's attribute names are the ones Home Assistant's answer templates read (HassTimerStatus:
`is_active`, `total_seconds_left`, `rounded_*_left`, `start_*`, `name`, `area`), so the
language's own template renders over our timers unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Float noise must not turn "exactly 90 s left" into 91 when rounding up.
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Timer:
    """One timer. Times are wall-clock seconds, so they mean the same thing after a restart."""

    id: str
    start_seconds: float
    """The duration it was set for; "the five minute timer" targets this, increases don't change it."""
    created_at: float
    name: str | None = None
    area: str | None = None
    deadline: float | None = None
    """When it rings, while it runs; None while paused."""
    paused_left: float = 0.0
    """Seconds left, while paused."""

    @property
    def is_active(self) -> bool:
        return self.deadline is not None

    def seconds_left(self, now: float) -> float:
        if self.deadline is None:
            return self.paused_left
        return max(0.0, self.deadline - now)


@dataclass(frozen=True, slots=True)
class TimerView:
    """A timer as an answer template sees it (names as in Home Assistant's HassTimerStatus)."""

    id: str
    name: str
    """"" when unnamed: the templates test it for truth."""
    area: str
    is_active: bool
    total_seconds_left: int
    hours_left: int
    minutes_left: int
    seconds_left: int
    rounded_hours_left: int
    rounded_minutes_left: int
    rounded_seconds_left: int
    start_hours: int
    start_minutes: int
    start_seconds: int


def whole_seconds_left(timer: Timer, now: float) -> int:
    """Seconds left, rounded up: a timer just set for 90 s has 90 left, not 89.6 → 89."""
    return max(0, math.ceil(timer.seconds_left(now) - _EPSILON))


def split_seconds(total: int) -> tuple[int, int, int]:
    """(hours, minutes, seconds) of a whole number of seconds."""
    minutes, seconds = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return hours, minutes, seconds


def round_for_speech(hours: int, minutes: int, seconds: int) -> tuple[int, int, int]:
    """Coarser time for a spoken answer, with Home Assistant's thresholds.

    Over an hour: whole or half hours (01:10 → 1 h, 01:25 → 1 h 30, 01:50 → 2 h). Over a minute:
    whole or half minutes, same thresholds on the seconds. Under a minute: exact below 10 s, a
    minute above 50 s, else down to ten seconds. Same rules, so our answers sound like HA's.
    """
    if hours > 0:
        if minutes > 45:
            return hours + 1, 0, 0
        return hours, (30 if minutes >= 15 else 0), 0
    if minutes > 0:
        if seconds > 45:
            return 0, minutes + 1, 0
        return 0, minutes, (30 if seconds >= 15 else 0)
    if seconds > 50:
        return 0, 1, 0
    if seconds < 10:
        return 0, 0, seconds
    return 0, 0, seconds - seconds % 10


def view(timer: Timer, now: float) -> TimerView:
    left = whole_seconds_left(timer, now)
    hours, minutes, seconds = split_seconds(left)
    r_hours, r_minutes, r_seconds = round_for_speech(hours, minutes, seconds)
    s_hours, s_minutes, s_seconds = split_seconds(round(timer.start_seconds))
    return TimerView(
        id=timer.id,
        name=timer.name or "",
        area=timer.area or "",
        is_active=timer.is_active,
        total_seconds_left=left,
        hours_left=hours,
        minutes_left=minutes,
        seconds_left=seconds,
        rounded_hours_left=r_hours,
        rounded_minutes_left=r_minutes,
        rounded_seconds_left=r_seconds,
        start_hours=s_hours,
        start_minutes=s_minutes,
        start_seconds=s_seconds,
    )
