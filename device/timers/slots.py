"""From the slots of Home Assistant's timer intents to the book's arguments.

hassil fills `hours` / `minutes` / `seconds` for a duration ("add 2 minutes", "half an hour" →
minutes 30), `start_hours` / `start_minutes` / `start_seconds` for the timer meant ("cancel the five
minute timer"), and `name` / `area`. Values arrive as numbers (5.0), or for "half" as 30.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from device.errors import TimerError

_UNITS = (("hours", 3600), ("minutes", 60), ("seconds", 1))


@dataclass(frozen=True, slots=True)
class Target:
    """Which timer a request means; every field None means "the timer"."""

    name: str | None = None
    area: str | None = None
    start_seconds: float | None = None


def duration(slots: Mapping[str, Any], prefix: str = "") -> float | None:
    """Total seconds of the `hours`/`minutes`/`seconds` slots (with `prefix`, e.g. "start_"); None if none.

    `slots` maps a slot name to its value (hassil's `entity.value`).
    """
    total: float | None = None
    for unit, scale in _UNITS:
        key = prefix + unit
        if key not in slots:
            continue
        value = _number(slots[key], key)
        total = (total or 0.0) + value * scale
    return total


def target(slots: Mapping[str, Any]) -> Target:
    name, area = slots.get("name"), slots.get("area")
    return Target(
        name=name if isinstance(name, str) and name.strip() else None,
        area=area if isinstance(area, str) and area.strip() else None,
        start_seconds=duration(slots, "start_"),
    )


def _number(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise TimerError("timer-bad-duration", f"{key} is not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise TimerError("timer-bad-duration", f"{key} must be a number ≥ 0, not {value!r}")
    return float(value)
