"""Home Assistant's timer sentences, recognized by hassil, drive the book through the slot helpers."""

from __future__ import annotations

from typing import Any

import pytest
from hassil import Intents, SlotList, TextSlotList, recognize
from home_assistant_intents import get_intents

from device.errors import TimerError
from device.timers import TimerBook
from device.timers.slots import Target, duration, target

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def intents() -> Intents:
    data = get_intents("en")
    assert data is not None
    return Intents.from_dict(data)


def understand(intents: Intents, text: str) -> tuple[str, dict[str, Any]]:
    lists: dict[str, SlotList] = {
        "area": TextSlotList.from_strings(["kitchen", "office"]),
        "name": TextSlotList.from_strings(["kitchen light"]),
        "floor": TextSlotList.from_strings(["upstairs"]),
    }
    result = recognize(text, intents, slot_lists=lists)
    assert result is not None, text
    return result.intent.name, {k: v.value for k, v in result.entities.items()}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("set a timer for 5 minutes", 300),
        ("set a timer for 90 seconds", 90),
        ("set a timer for half an hour", 1800),
        ("start a timer for 2 and a half minutes", 150),
        ("set a timer for one and a half hours", 5400),
        ("set a 1 hour and 30 minute timer", 5400),
    ],
)
def test_start_durations(intents: Intents, text: str, seconds: float) -> None:
    intent, slots = understand(intents, text)
    assert intent == "HassStartTimer"
    assert duration(slots) == seconds


def test_a_conversation_about_timers(intents: Intents) -> None:
    book = TimerBook()

    def do(text: str, now: float) -> Any:
        intent, slots = understand(intents, text)
        aim = target(slots)
        kw: dict[str, Any] = {"name": aim.name, "area": aim.area, "start_seconds": aim.start_seconds}
        if intent == "HassStartTimer":
            return book.start(duration(slots) or 0, now=now, name=aim.name)
        if intent == "HassCancelTimer":
            return book.cancel(**kw)
        if intent == "HassPauseTimer":
            return book.pause(now=now, **kw)
        if intent == "HassUnpauseTimer":
            return book.unpause(now=now, **kw)
        if intent == "HassIncreaseTimer":
            return book.add_time(duration(slots) or 0, now=now, **kw)
        if intent == "HassDecreaseTimer":
            return book.remove_time(duration(slots) or 0, now=now, **kw)
        assert intent == "HassTimerStatus"
        return [v.total_seconds_left for v in book.status(now, **kw)]

    do("set a timer for 10 minutes named pizza", T0)
    do("set a timer for 5 minutes", T0 + 10)
    assert do("how much time is left on the pizza timer", T0 + 60) == [540]
    do("add 2 minutes to the pizza timer", T0 + 60)
    do("remove 30 seconds from the pizza timer", T0 + 60)
    assert do("how much time is left on the pizza timer", T0 + 60) == [630]
    do("pause the timer", T0 + 70)  # untargeted: the newest running one, the 5 minute timer
    assert do("timer status", T0 + 300) == [390, 240]
    do("resume the timer", T0 + 300)
    assert do("cancel the 5 minute timer", T0 + 301).start_seconds == 300
    with pytest.raises(TimerError) as err:
        do("cancel the eggs timer", T0 + 302)
    assert err.value.code == "timer-not-found"


def test_targets_and_bad_values() -> None:
    assert target({}) == Target()
    assert target({"name": " ", "area": "kitchen", "start_minutes": 5.0}) == Target(area="kitchen", start_seconds=300)
    assert duration({"hours": "1", "minutes": 30}) == 5400
    assert duration({"name": "pizza"}) is None
    for bad in (-1, "soon", float("nan"), True):
        with pytest.raises(TimerError) as err:
            duration({"minutes": bad})
        assert err.value.code == "timer-bad-duration"
