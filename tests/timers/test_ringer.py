"""TimerRinger on a real asyncio loop with a fake clock: rings once per finished timer, stops on "stop" or at the cap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from device.timers import Timer, TimerBook, TimerRinger, TimerStore

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Bell:
    """Records what the ringer asked the speaker to do."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.changed = asyncio.Event()

    def ring(self, timer: Timer) -> None:
        self.calls.append(f"ring {timer.name}")
        self.changed.set()

    def stop(self) -> None:
        self.calls.append("stop")
        self.changed.set()

    async def next_change(self) -> None:
        await asyncio.wait_for(self.changed.wait(), 5)
        self.changed.clear()


async def settle() -> None:
    # No I/O on the loop: a few passes let the ringer task run whatever a poke set off.
    for _ in range(20):
        await asyncio.sleep(0)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_rings_at_the_deadline_once_and_stop_ends_the_ring() -> None:
    async def scenario() -> None:
        clock, book, bell = FakeClock(T0), TimerBook(), Bell()
        book.start(60, now=T0, name="tea")
        # A long poll: only the poke below (as the service does after a change) wakes it early.
        ringer = TimerRinger(book, clock=clock, ring=bell.ring, stop=bell.stop, poll_s=3600)
        task = asyncio.create_task(ringer.run())
        await settle()
        clock.now = T0 + 59.9
        ringer.poke()
        await settle()
        assert bell.calls == [] and not ringer.ringing
        clock.now = T0 + 60
        ringer.poke()
        await bell.next_change()
        assert bell.calls == ["ring tea"] and [t.name for t in ringer.ringing_for] == ["tea"]
        clock.now = T0 + 70
        ringer.poke()
        await settle()
        assert bell.calls == ["ring tea"]  # reported once
        assert ringer.stop_ring() is True
        assert ringer.stop_ring() is False  # nothing ringing: the caller treats "stop" otherwise
        assert bell.calls == ["ring tea", "stop"] and len(book) == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bell.calls == ["ring tea", "stop"]  # no second stop at shutdown

    run(scenario)


def test_sleeps_until_the_next_deadline_rather_than_the_poll() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        book, bell = TimerBook(), Bell()

        def clock() -> float:
            return T0 + loop.time() - start

        book.start(0.05, now=clock(), name="quick")
        ringer = TimerRinger(book, clock=clock, ring=bell.ring, stop=bell.stop, poll_s=3600)
        task = asyncio.create_task(ringer.run())
        await bell.next_change()  # no poke: the wait was planned to end at the deadline
        assert bell.calls == ["ring quick"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bell.calls == ["ring quick", "stop"]  # a ring going at shutdown is stopped

    run(scenario)


def test_the_ring_stops_by_itself_at_the_cap_and_a_new_finish_restarts_the_cap() -> None:
    async def scenario() -> None:
        clock, book, bell = FakeClock(T0), TimerBook(), Bell()
        book.start(60, now=T0, name="tea")
        book.start(200, now=T0, name="eggs")
        ringer = TimerRinger(book, clock=clock, ring=bell.ring, stop=bell.stop, ring_cap_s=300, poll_s=3600)
        task = asyncio.create_task(ringer.run())
        clock.now = T0 + 60
        ringer.poke()
        await bell.next_change()
        clock.now = T0 + 200  # eggs finishes while tea still rings: its own full ring
        ringer.poke()
        await bell.next_change()
        clock.now = T0 + 200 + 299
        ringer.poke()
        await settle()
        assert bell.calls == ["ring tea", "ring eggs"] and len(ringer.ringing_for) == 2
        clock.now = T0 + 200 + 300
        ringer.poke()
        await bell.next_change()
        assert bell.calls == ["ring tea", "ring eggs", "stop"] and not ringer.ringing
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario)


def test_timers_that_finished_while_down_ring_at_the_first_check() -> None:
    book, bell = TimerBook(), Bell()
    book.start(60, now=T0, name="tea")
    ringer = TimerRinger(book, clock=FakeClock(T0 + 3600), ring=bell.ring, stop=bell.stop)
    assert [t.name for t in ringer.check()] == ["tea"]
    assert ringer.check() == []
    assert bell.calls == ["ring tea"]


def test_a_failing_ring_callback_does_not_stop_the_next_timer(caplog: pytest.LogCaptureFixture) -> None:
    clock, book, bell = FakeClock(T0), TimerBook(), Bell()
    book.start(10, now=T0, name="broken")
    book.start(20, now=T0, name="fine")

    def ring(timer: Timer) -> None:
        if timer.name == "broken":
            raise RuntimeError("speaker gone")
        bell.ring(timer)

    ringer = TimerRinger(book, clock=clock, ring=ring, stop=bell.stop)
    clock.now = T0 + 10
    with caplog.at_level(logging.ERROR, logger="device.timers.ringer"):
        ringer.check()
    assert "speaker gone" in caplog.text
    clock.now = T0 + 20
    ringer.check()
    assert bell.calls == ["ring fine"] and len(ringer.ringing_for) == 2


def test_a_clock_stepped_by_ntp_neither_rings_new_timers_early_nor_moves_saved_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Run 1, on a right clock: a one-hour roast. Then two hours without power.
    TimerBook(TimerStore(tmp_path)).start(3600, now=T0, name="roast")
    # Run 2 boots on a stale clock (the last time saved, a minute in), true time is T0 + 7240 + s.
    steady = FakeClock(0.0)
    wall = FakeClock(T0 + 60)
    book, bell = TimerBook(TimerStore(tmp_path)), Bell()
    ringer = TimerRinger(book, clock=wall, ring=bell.ring, stop=bell.stop, steady=steady)
    assert ringer.check() == []  # by the stale clock the roast has 59 minutes to go
    book.start(600, now=ringer.now(), name="tea")  # tea: due at s = 600

    def at(s: float, stale: bool = False) -> list[str | None]:
        steady.now = s
        wall.now = (T0 + 60 + s) if stale else (T0 + 7240 + s)
        return [t.name for t in ringer.check()]

    assert at(20, stale=True) == []
    with caplog.at_level(logging.WARNING, logger="device.timers.ringer"):
        assert at(30) == ["roast"]  # NTP: it finished during the outage; tea keeps its time
    assert "stepped by +7180.0 s" in caplog.text
    assert [v.total_seconds_left for v in book.status(wall.now)] == [570]
    assert at(599.5) == []
    assert at(600) == ["tea"]
    # Small corrections (drift being slewed) are not steps.
    book.start(60, now=ringer.now(), name="eggs")
    steady.now, wall.now = 601, T0 + 7240 + 601 + 1.5
    assert ringer.check() == [] and book.find(name="eggs").deadline == T0 + 7840 + 60

