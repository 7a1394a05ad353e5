"""Timers survive a restart through a real file: atomic saves, due-while-down, bad files moved aside."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from device.timers import TimerBook, TimerStore
from device.timers.store import FILE_NAME
from tests.ota.simfs import PowerCut, SimulatedPowerCutFS, copy_tree

T0 = 1_700_000_000.0


def save_error_code(book: TimerBook) -> str | None:
    return None if book.save_error is None else book.save_error.code


def test_timers_survive_a_restart_with_their_state(tmp_path: Path) -> None:
    book = TimerBook(TimerStore(tmp_path))
    book.start(600, now=T0, name="pizza", area="kitchen")
    book.start(300, now=T0 + 1, name="eggs")
    book.pause(now=T0 + 61, name="eggs")  # 240 s left, frozen
    book.start(90, now=T0 + 2)
    book.cancel(start_seconds=90)

    # The service restarts: a new book on the same directory, later on the wall clock.
    again = TimerBook(TimerStore(tmp_path))
    views = {v.name: v for v in again.status(T0 + 100)}
    assert set(views) == {"pizza", "eggs"}
    assert views["pizza"].total_seconds_left == 500 and views["pizza"].area == "kitchen"
    assert views["eggs"].total_seconds_left == 240 and not views["eggs"].is_active
    # Ids carry on where they were: the cancelled timer's id is not handed out again.
    assert again.start(60, now=T0 + 100).id == "t4"


def test_a_timer_that_finished_while_the_service_was_down_is_due_once_at_start(tmp_path: Path) -> None:
    book = TimerBook(TimerStore(tmp_path))
    book.start(60, now=T0, name="tea")
    book.start(3600, now=T0, name="roast")

    after_outage = T0 + 600
    again = TimerBook(TimerStore(tmp_path))
    [tea] = again.due(after_outage)
    assert tea.name == "tea" and after_outage - (tea.deadline or 0) == 540  # how late it rings
    assert again.due(after_outage) == []
    # ...and it is gone from the file too: a second restart doesn't ring it again.
    third = TimerBook(TimerStore(tmp_path))
    assert third.due(after_outage) == []
    assert [v.name for v in third.status(after_outage)] == ["roast"]


def test_the_file_is_plain_json_written_without_a_temp_left_behind(tmp_path: Path) -> None:
    state = tmp_path / "state" / "voxhome"  # not there yet: the store makes it
    TimerBook(TimerStore(state)).start(60, now=T0, name="tea")
    doc = json.loads((state / FILE_NAME).read_text())
    assert doc["version"] == 1 and [t["name"] for t in doc["timers"]] == ["tea"]
    assert sorted(p.name for p in state.iterdir()) == [FILE_NAME]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe garbage",
        b"[]",
        b'{"version": 99, "next_id": 1, "timers": []}',
        b'{"version": 1, "next_id": 1, "timers": [{"id": "t1"}]}',
        b'{"version": 1, "next_id": 1, "timers": [{"id": "t1", "name": 5, "area": null,'
        b' "start_seconds": 60, "created_at": 0, "deadline": 60, "paused_left": 0}]}',
        b'{"version": 1, "next_id": 2, "timers": [{"id": "t1", "name": null, "area": null,'
        b' "start_seconds": -1, "created_at": 0, "deadline": 60, "paused_left": 0}]}',
        b"[" * 100_000,
    ],
)
def test_a_corrupt_file_is_moved_aside_logged_and_the_book_starts_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    store = TimerStore(tmp_path)
    with caplog.at_level(logging.ERROR, logger="device.timers.store"):
        book = TimerBook(store)
    assert len(book) == 0
    assert "timer-store-corrupt" in caplog.text
    assert store.quarantined == tmp_path / (FILE_NAME + ".corrupt")
    assert store.quarantined.read_bytes() == content  # nothing lost
    # The next change writes a fresh file; the bad one stays beside it.
    book.start(60, now=T0)
    assert len(TimerBook(TimerStore(tmp_path))) == 1
    assert store.quarantined.read_bytes() == content


def test_a_second_corrupt_file_does_not_overwrite_the_first_one_moved_aside(tmp_path: Path) -> None:
    for n, content in enumerate([b"first", b"second"]):
        (tmp_path / FILE_NAME).write_bytes(content)
        store = TimerStore(tmp_path)
        TimerBook(store)
        assert store.quarantined == tmp_path / (FILE_NAME + (".corrupt" if n == 0 else ".corrupt.1"))
    assert (tmp_path / (FILE_NAME + ".corrupt")).read_bytes() == b"first"
    assert (tmp_path / (FILE_NAME + ".corrupt.1")).read_bytes() == b"second"


def test_an_unreadable_file_is_moved_aside_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A directory where the file should be: reading fails with an OSError even for root.
    (tmp_path / FILE_NAME).mkdir()
    (tmp_path / FILE_NAME / "keep").write_text("x")
    store = TimerStore(tmp_path)
    with caplog.at_level(logging.ERROR, logger="device.timers.store"):
        book = TimerBook(store)
    assert len(book) == 0
    assert "can't read it" in caplog.text and store.quarantined is not None
    assert (store.quarantined / "keep").read_text() == "x"
    book.start(60, now=T0)
    assert len(TimerBook(TimerStore(tmp_path))) == 1


def test_a_full_disk_keeps_the_timer_running_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fs = SimulatedPowerCutFS(tmp_path, enospc_after_bytes=0)
    book = TimerBook(TimerStore(tmp_path, fs))
    with caplog.at_level(logging.ERROR, logger="device.timers.book"):
        timer = book.start(60, now=T0, name="tea")
        book.start(120, now=T0, name="eggs")
    assert save_error_code(book) == "timer-save-failed"
    assert caplog.text.count("timer-save-failed") == 1  # once, not at every change
    assert [t.id for t in book.due(T0 + 60)] == [timer.id]  # it still rings
    fs.enospc_after_bytes = None
    book.cancel_all()
    assert save_error_code(book) is None
    assert not list(tmp_path.glob("*.tmp"))


def test_a_power_cut_at_any_point_of_a_save_leaves_the_old_or_the_new_timers(tmp_path: Path) -> None:
    base = tmp_path / "base"
    TimerBook(TimerStore(base)).start(600, now=T0, name="first")

    def change(fs: SimulatedPowerCutFS, state: Path) -> None:
        TimerBook(TimerStore(state, fs)).start(60, now=T0 + 1, name="second")

    counter_dir = tmp_path / "count"
    copy_tree(base, counter_dir)
    counter = SimulatedPowerCutFS(counter_dir)
    change(counter, counter_dir)
    assert counter.ops > 3
    assert [v.name for v in TimerBook(TimerStore(counter_dir)).status(T0)] == ["first", "second"]
    seen = set()
    for cut in range(counter.ops):
        work, image = tmp_path / f"work{cut}", tmp_path / f"image{cut}"
        copy_tree(base, work)
        fs = SimulatedPowerCutFS(work, cut_after=cut)
        with pytest.raises(PowerCut):
            change(fs, work)
        fs.durable_image(image)
        store = TimerStore(image)
        names = tuple(v.name for v in TimerBook(store).status(T0 + 2))
        assert store.quarantined is None, f"cut {cut}: the file was torn"
        assert names in {("first",), ("first", "second")}, f"cut {cut}: {names}"
        seen.add(names)
    assert seen == {("first",)}  # the new state is durable only once the last fsync is done


def test_a_clock_step_moves_only_the_deadlines_computed_on_this_runs_clock(tmp_path: Path) -> None:
    book = TimerBook(TimerStore(tmp_path))
    book.start(600, now=T0, name="saved")
    book.start(600, now=T0, name="paused")
    book.pause(now=T0 + 100, name="paused")
    again = TimerBook(TimerStore(tmp_path))
    again.unpause(now=T0 + 200, name="paused")  # its deadline now comes from this run's clock
    again.start(600, now=T0 + 200, name="new")
    assert again.clock_stepped(1000) == 2
    deadlines = {t.name: t.deadline for t in again.timers()}
    assert deadlines == {"saved": T0 + 600, "paused": T0 + 700 + 1000, "new": T0 + 800 + 1000}
    # The moved deadlines are what a restart reads back.
    assert {t.name: t.deadline for t in TimerBook(TimerStore(tmp_path)).timers()} == deadlines
