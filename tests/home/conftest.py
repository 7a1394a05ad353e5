"""Fixtures for the home: the demo home file, a registry loaded from it, and the virtual home
running as a real process against the real broker."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.intent.language import HomeLanguage
from device.intent.templates import Templates, load_templates
from device.settings import Settings, settings_from_dict
from device.sim.broker import Mosquitto
from device.tools.registry import Registry

DEMO = Path(__file__).resolve().parents[2] / "device" / "sim" / "demo_home.json"
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "mqtt-discovery-examples.json"
"""A copy of shared/reference/mqtt-discovery-examples.json (real payloads), kept with the tests."""


def load_demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def demo_registry() -> Registry:
    registry = Registry()
    data = load_demo()
    for c in data["configs"]:
        registry.handle(c["topic"], json.dumps(c["payload"]).encode())
    return registry


@functools.cache
def english() -> Templates:
    """Loading and checking the sentence files takes ~0.2 s: once per test run is enough."""
    return load_templates("en")


def demo_language(registry: Registry | None = None, **options: Any) -> HomeLanguage:
    return HomeLanguage(registry if registry is not None else demo_registry(), templates=english(), **options)


@pytest.fixture
def registry() -> Registry:
    return demo_registry()


def settings_for(broker: Mosquitto, **mqtt: Any) -> Settings:
    return settings_from_dict({
        "device": {"id": "testspeaker"},
        "mqtt": {"host": broker.host, "port": broker.port, "command_timeout_s": 2.0,
                 "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, **mqtt},
    })


class SimHome:
    def __init__(self, broker: Mosquitto, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "device.sim.home", "--mqtt", broker.url, "--discovery", str(DEMO), *extra],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        ready = json.loads(line)
        assert ready["type"] == "sim_ready", line
        self.entities = ready["entities"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def sim_home(mosquitto: Mosquitto) -> Iterator[SimHome]:
    sim = SimHome(mosquitto)
    try:
        yield sim
    finally:
        sim.stop()


def run_async(fn: Any) -> Any:
    """Run an async test on a fresh event loop (the project has no pytest-asyncio)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
