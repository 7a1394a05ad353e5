"""TimerBook: start / status / pause / unpause / cancel / add and remove time / due, with HA-like targeting."""

from __future__ import annotations

import logging

import pytest

from device.errors import TimerError
from device.timers import MAX_SECONDS, TimerBook

T0 = 1_700_000_000.0  # a wall-clock value; the book never reads a clock itself


def test_start_then_status_counts_down_on_the_clock_passed_in() -> None:
    book = TimerBook()
    timer = book.start(90, now=T0)
    assert timer.deadline == T0 + 90 and timer.is_active
    [status] = book.status(T0)
    assert (status.total_seconds_left, status.minutes_left, status.seconds_left) == (90, 1, 30)
    assert (status.start_hours, status.start_minutes, status.start_seconds) == (0, 1, 30)
    assert (status.name, status.area, status.is_active) == ("", "", True)
    assert book.status(T0 + 30.4)[0].total_seconds_left == 60  # 59.6 s left is said as 60
    assert book.status(T0 + 89.9)[0].total_seconds_left == 1
    assert book.status(T0 + 500)[0].total_seconds_left == 0


def test_pause_freezes_the_time_left_and_unpause_resumes_it() -> None:
    book = TimerBook()
    book.start(300, now=T0)
    paused = book.pause(now=T0 + 100)
    assert not paused.is_active and paused.paused_left == 200
    assert book.status(T0 + 10_000)[0].total_seconds_left == 200
    assert not book.status(T0 + 10_000)[0].is_active
    assert book.due(T0 + 10_000) == []  # a paused timer never finishes
    resumed = book.unpause(now=T0 + 10_000)
    assert resumed.deadline == T0 + 10_200
    assert book.due(T0 + 10_199) == []
    assert [t.id for t in book.due(T0 + 10_200)] == [resumed.id]


def test_pause_picks_among_running_timers_and_unpause_among_paused_ones() -> None:
    book = TimerBook()
    book.start(60, now=T0, name="tea")
    book.start(120, now=T0 + 1, name="eggs")
    book.pause(now=T0 + 2, name="eggs")
    assert book.pause(now=T0 + 3).name == "tea"  # the only running one, though eggs is newer
    book.unpause(now=T0 + 4, name="tea")
    assert book.unpause(now=T0 + 5).name == "eggs"  # the only paused one
    with pytest.raises(TimerError) as err:
        book.unpause(now=T0 + 6)
    assert err.value.code == "timer-not-found" and "paused" in err.value.message


def test_named_timers_are_targeted_by_name_case_and_spacing_aside() -> None:
    book = TimerBook()
    pizza = book.start(600, now=T0, name="Pizza")
    book.start(300, now=T0 + 1, name="pasta")
    assert book.find(name="  pizza ") == pizza
    assert book.find(name="pizza timer") == pizza  # "cancel the pizza timer" with the word kept
    assert book.cancel(name="PIZZA").id == pizza.id
    assert [v.name for v in book.status(T0 + 2)] == ["pasta"]
    with pytest.raises(TimerError) as err:
        book.cancel(name="pizza")
    assert err.value.code == "timer-not-found" and "pizza" in err.value.message


def test_targeting_by_area_and_by_the_duration_it_was_set_for() -> None:
    book = TimerBook()
    kitchen = book.start(300, now=T0, area="Kitchen")
    office = book.start(600, now=T0 + 1, area="office")
    assert book.find(area="kitchen") == kitchen
    assert book.find(start_seconds=600) == office
    # Adding time doesn't change what it was set for: it's still "the five minute timer".
    book.add_time(120, now=T0 + 2, area="kitchen")
    assert book.find(start_seconds=300).id == kitchen.id
    with pytest.raises(TimerError) as err:
        book.find(start_seconds=420)
    assert err.value.code == "timer-not-found"


def test_several_matches_are_ambiguous_when_targeted_and_the_newest_when_not() -> None:
    book = TimerBook()
    book.start(300, now=T0, name="tea")
    newest = book.start(300, now=T0 + 5, name="tea")
    with pytest.raises(TimerError) as err:
        book.cancel(name="tea")
    assert err.value.code == "timer-ambiguous" and "2 timers" in err.value.message
    with pytest.raises(TimerError) as err:
        book.find(start_seconds=300)
    assert err.value.code == "timer-ambiguous"
    assert book.cancel() == newest  # "cancel the timer": the one just set
    assert len(book) == 1


def test_the_only_timer_is_found_without_a_target_and_none_is_not_found() -> None:
    book = TimerBook()
    with pytest.raises(TimerError) as err:
        book.cancel()
    assert err.value.code == "timer-not-found" and err.value.message == "there is no timer"
    only = book.start(42, now=T0, name="bread")
    assert book.find() == only


def test_cancel_all_everywhere_or_in_one_area() -> None:
    book = TimerBook()
    book.start(60, now=T0, area="kitchen")
    book.start(60, now=T0 + 1, area="kitchen")
    book.start(60, now=T0 + 2, area="office")
    assert len(book.cancel_all(area="Kitchen")) == 2
    assert [v.area for v in book.status(T0)] == ["office"]
    assert len(book.cancel_all()) == 1
    assert book.cancel_all() == []
    assert book.status(T0) == []


def test_add_and_remove_time_on_running_and_paused_timers() -> None:
    book = TimerBook()
    book.start(300, now=T0)
    assert book.add_time(60, now=T0 + 100).deadline == T0 + 360
    assert book.remove_time(120, now=T0 + 100).deadline == T0 + 240
    book.pause(now=T0 + 140)
    assert book.add_time(30, now=T0 + 999).paused_left == 130
    assert book.remove_time(500, now=T0 + 999).paused_left == 0  # all of it: due once resumed
    book.unpause(now=T0 + 2000)
    assert len(book.due(T0 + 2000)) == 1


def test_removing_all_that_is_left_makes_a_running_timer_due_now() -> None:
    book = TimerBook()
    book.start(600, now=T0)
    book.remove_time(3600, now=T0 + 10)
    assert [v.total_seconds_left for v in book.status(T0 + 10)] == [0]
    assert len(book.due(T0 + 10)) == 1


@pytest.mark.parametrize("seconds", [0, -5, MAX_SECONDS + 1, float("nan"), float("inf"), True])
def test_bad_durations_are_refused_and_change_nothing(seconds: float) -> None:
    book = TimerBook()
    with pytest.raises(TimerError) as err:
        book.start(seconds, now=T0)
    assert err.value.code == "timer-bad-duration"
    assert len(book) == 0
    book.start(60, now=T0)
    with pytest.raises(TimerError) as err:
        book.add_time(seconds, now=T0)
    assert err.value.code == "timer-bad-duration"
    assert book.find().deadline == T0 + 60


def test_a_full_day_is_allowed_but_adding_past_it_is_not() -> None:
    book = TimerBook()
    book.start(MAX_SECONDS, now=T0)
    with pytest.raises(TimerError) as err:
        book.add_time(1, now=T0)
    assert err.value.code == "timer-bad-duration"
    book.add_time(10, now=T0 + 10)  # ten seconds have gone: ten may come back


def test_the_number_of_timers_is_capped() -> None:
    book = TimerBook(limit=3)
    for i in range(3):
        book.start(60 + i, now=T0)
    with pytest.raises(TimerError) as err:
        book.start(60, now=T0)
    assert err.value.code == "timer-limit"
    book.cancel(start_seconds=61)
    book.start(70, now=T0)  # room again


def test_due_reports_each_finished_timer_once_soonest_first() -> None:
    book = TimerBook()
    late = book.start(120, now=T0, name="late")
    soon = book.start(60, now=T0, name="soon")
    book.start(600, now=T0, name="later")
    assert book.due(T0 + 59.9) == []
    assert book.next_deadline() == T0 + 60
    assert [t.name for t in book.due(T0 + 200)] == ["soon", "late"]
    assert book.due(T0 + 200) == []
    assert [v.name for v in book.status(T0 + 200)] == ["later"]
    assert {soon.id, late.id}.isdisjoint(v.id for v in book.status(T0))


def test_ids_are_not_reused_after_a_timer_goes(caplog: pytest.LogCaptureFixture) -> None:
    book = TimerBook()
    first = book.start(60, now=T0)
    book.cancel()
    with caplog.at_level(logging.INFO, logger="device.timers.book"):
        second = book.start(60, now=T0)
    assert first.id != second.id
    assert second.id in caplog.text
