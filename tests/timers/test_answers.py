"""Home Assistant's own English answer templates render over our timer views into sensible speech."""

from __future__ import annotations

from typing import Any

import pytest
from home_assistant_intents import get_intents
from jinja2.sandbox import SandboxedEnvironment

from device.timers import TimerBook
from device.timers.view import Timer, round_for_speech, view

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def responses() -> dict[str, Any]:
    intents = get_intents("en")
    assert intents is not None
    return intents["responses"]["intents"]


def say(responses: dict[str, Any], intent: str, slots: dict[str, Any], key: str = "default") -> str:
    # The same environment settings device/intent/responses.py renders answers with.
    env = SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
    return " ".join(env.from_string(responses[intent][key]).render(slots=slots).split())


def status(responses: dict[str, Any], book: TimerBook, now: float) -> str:
    return say(responses, "HassTimerStatus", {"timers": book.status(now)})


def test_the_template_reads_every_attribute_a_view_has() -> None:
    used = {"is_active", "total_seconds_left", "rounded_hours_left", "rounded_minutes_left",
            "rounded_seconds_left", "start_hours", "start_minutes", "start_seconds", "name", "area"}
    fields = set(type(view(Timer(id="t1", start_seconds=60, created_at=T0, deadline=T0 + 60), T0)).__dataclass_fields__)
    assert used <= fields


@pytest.mark.parametrize(
    ("seconds", "elapsed", "answer"),
    [
        (90, 0, "1 minute and 30 seconds left."),
        (90, 20, "1 minute left."),  # 70 s: said as a minute
        (300, 0, "5 minutes left."),
        (300, 100, "3 minutes and 30 seconds left."),
        (300, 250, "50 seconds left."),
        (300, 295, "5 seconds left."),
        (300, 299.5, "1 second left."),
        (3600, 0, "1 hour left."),
        (5400, 0, "1 hour and 30 minutes left."),
        (7200 + 50 * 60, 0, "3 hours left."),
        (4 * 3600 + 20 * 60, 0, "4 hours and 30 minutes left."),
    ],
)
def test_one_running_timer(responses: dict[str, Any], seconds: int, elapsed: float, answer: str) -> None:
    book = TimerBook()
    book.start(seconds, now=T0)
    assert status(responses, book, T0 + elapsed) == answer


def test_no_timers(responses: dict[str, Any]) -> None:
    assert status(responses, TimerBook(), T0) == "No timers."


def test_a_paused_timer(responses: dict[str, Any]) -> None:
    book = TimerBook()
    book.start(600, now=T0)
    book.pause(now=T0 + 120)
    assert status(responses, book, T0 + 9999) == "Timer is paused. 8 minutes left."


def test_several_timers_name_the_one_that_ends_first(responses: dict[str, Any]) -> None:
    book = TimerBook()
    book.start(600, now=T0, name="pizza")
    book.start(300, now=T0 + 10, area="kitchen")
    book.start(3600, now=T0 + 20)
    book.pause(now=T0 + 30, start_seconds=3600)
    assert status(responses, book, T0 + 70) == (
        "2 running timers. 1 paused timer. 4 minutes left on 5 minute kitchen timer."
    )
    book.cancel(area="kitchen")
    assert status(responses, book, T0 + 70) == (
        "1 paused timer. 9 minutes left on 10 minute pizza timer."
    )


def test_status_of_one_named_timer(responses: dict[str, Any]) -> None:
    book = TimerBook()
    book.start(600, now=T0, name="pizza")
    book.start(95, now=T0, name="eggs")
    views = book.status(T0, name="eggs")
    assert say(responses, "HassTimerStatus", {"timers": views}) == "1 minute and 30 seconds left."


def test_cancel_all_answers_with_the_count(responses: dict[str, Any]) -> None:
    book = TimerBook()
    book.start(60, now=T0, area="kitchen")
    book.start(60, now=T0, area="kitchen")
    cancelled = len(book.cancel_all(area="kitchen"))
    slots = {"canceled": cancelled, "area": "kitchen"}
    assert say(responses, "HassCancelAllTimers", slots, "area") == "Canceled 2 timers in kitchen."
    assert say(responses, "HassCancelAllTimers", {"canceled": len(book.cancel_all())}) == (
        "No timers were canceled."
    )


@pytest.mark.parametrize(
    ("hms", "rounded"),
    [
        ((1, 10, 30), (1, 0, 0)),
        ((1, 25, 30), (1, 30, 0)),
        ((1, 50, 30), (2, 0, 0)),
        ((0, 1, 10), (0, 1, 0)),
        ((0, 1, 25), (0, 1, 30)),
        ((0, 1, 50), (0, 2, 0)),
        ((0, 0, 55), (0, 1, 0)),
        ((0, 0, 9), (0, 0, 9)),
        ((0, 0, 37), (0, 0, 30)),
        ((0, 0, 0), (0, 0, 0)),
    ],
)
def test_rounding_for_speech(hms: tuple[int, int, int], rounded: tuple[int, int, int]) -> None:
    assert round_for_speech(*hms) == rounded
