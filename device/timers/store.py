"""The timers' file: one JSON document in the state directory, replaced atomically on every change.

A write is temp file + fsync + rename + fsync(directory) (`ota.atomic.write_atomic`), so after a
power cut the file holds the state before or after the change, never a mix. A file that can't be
read or parsed is moved aside (`timers.json.corrupt`, `.corrupt.1`, …) with an error in the log, and
the speaker starts with no timers: the bad bytes stay on disk for a look, and the next save can't
overwrite them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.errors import TimerError, VoxError
from ota.atomic import FileSystem, makedirs, write_atomic

from .view import Timer

_LOGGER = logging.getLogger(__name__)

FILE_NAME = "timers.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the book keeps: its timers (in creation order) and the next id to hand out."""

    timers: tuple[Timer, ...] = ()
    next_id: int = 1


class TimerStore:
    """Loads and saves a `Snapshot` at `<state dir>/timers.json`; `fs` is swapped in tests."""

    def __init__(self, state_dir: Path, fs: FileSystem | None = None) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self._fs = fs or FileSystem()
        self.quarantined: Path | None = None
        """Where the last load moved a bad file to, if it did."""

    def load(self) -> Snapshot:
        """The saved snapshot; empty when there is none, or when the file was bad (moved aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Snapshot()
        except OSError as err:
            return self._quarantine(f"can't read it: {err.strerror or err}")
        try:
            return _decode(raw)
        except (ValueError, TypeError, KeyError, RecursionError) as err:
            return self._quarantine(f"not a timers file: {err}")

    def save(self, snapshot: Snapshot) -> None:
        """Replace the file with `snapshot`; raises TimerError("timer-save-failed") if the disk refuses."""
        data = json.dumps(_encode(snapshot), indent=1, sort_keys=True).encode()
        try:
            makedirs(self._fs, self.path.parent)
            write_atomic(self._fs, self.path, data)
        except OSError as err:
            raise TimerError("timer-save-failed", f"can't save timers to {self.path}: {err.strerror or err}") from None
        except VoxError as err:
            raise TimerError("timer-save-failed", f"can't save timers: {err.message}") from None

    def _quarantine(self, why: str) -> Snapshot:
        target = self._free_name()
        try:
            os.replace(self.path, target)
        except OSError as err:
            # It stays where it is; saving would overwrite it, so say so loudly.
            _LOGGER.error(
                "timer-store-corrupt: %s: %s; moving it aside failed (%s), so the next change will replace it",
                self.path, why, err.strerror or err,
            )
            return Snapshot()
        self.quarantined = target
        _LOGGER.error("timer-store-corrupt: %s: %s; moved to %s, starting with no timers", self.path, why, target)
        return Snapshot()

    def _free_name(self) -> Path:
        target = self.path.with_name(self.path.name + ".corrupt")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt.{n}")
        return target


def _encode(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "version": VERSION,
        "next_id": snapshot.next_id,
        "timers": [
            {
                "id": t.id,
                "name": t.name,
                "area": t.area,
                "start_seconds": t.start_seconds,
                "created_at": t.created_at,
                "deadline": t.deadline,
                "paused_left": t.paused_left,
            }
            for t in snapshot.timers
        ],
    }


def _decode(raw: bytes) -> Snapshot:
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("the top level is not an object")
    if doc.get("version") != VERSION:
        raise ValueError(f"unknown version {doc.get('version')!r}")
    next_id = doc["next_id"]
    if not isinstance(next_id, int) or isinstance(next_id, bool) or next_id < 1:
        raise ValueError(f"bad next_id {next_id!r}")
    items = doc["timers"]
    if not isinstance(items, list):
        raise ValueError("timers is not a list")
    timers = tuple(_decode_timer(item) for item in items)
    if len({t.id for t in timers}) != len(timers):
        raise ValueError("two timers share an id")
    return Snapshot(timers=timers, next_id=next_id)


def _decode_timer(item: Any) -> Timer:
    if not isinstance(item, dict):
        raise ValueError("a timer is not an object")
    timer_id = item["id"]
    if not isinstance(timer_id, str) or not timer_id:
        raise ValueError(f"bad timer id {timer_id!r}")
    deadline = item["deadline"]
    start = _number(item, "start_seconds")
    if start <= 0:
        raise ValueError(f"timer {timer_id}: start_seconds must be > 0")
    paused_left = _number(item, "paused_left")
    if paused_left < 0:
        raise ValueError(f"timer {timer_id}: paused_left must be ≥ 0")
    return Timer(
        id=timer_id,
        name=_text(item, "name"),
        area=_text(item, "area"),
        start_seconds=start,
        created_at=_number(item, "created_at"),
        deadline=None if deadline is None else _number(item, "deadline"),
        paused_left=paused_left,
    )


def _number(item: dict[str, Any], key: str) -> float:
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} is not a number: {value!r}")
    return float(value)


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item[key]
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} is not text: {value!r}")
    return value
