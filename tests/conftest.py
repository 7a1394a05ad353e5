"""Fixtures shared by every test area; each area's own fixtures live in its folder's conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from device.sim.broker import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh real broker on 127.0.0.1:<free port>, stopped after the test."""
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
