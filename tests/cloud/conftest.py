"""Shared pieces for the cloud tests: a sink that tracks playback, a small tool executor."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from device.cloud.realtime import RealtimeClient
from device.events import AudioChunk, ToolCall, ToolResult
from device.settings import CloudSettings
from device.tools.api import ToolSpec

EVENTS = Path(__file__).resolve().parents[1] / "data" / "realtime-events"
"""A copy of shared/reference/realtime-events (the recorded sessions), kept with the tests."""
if not EVENTS.is_dir():  # the repo-relative location, when the shared folder is beside the checkout
    EVENTS = Path(__file__).resolve().parents[3] / "shared/reference/realtime-events"


class PlaybackSink:
    """An AudioSink that "plays" instantly, with an optional cap on what has been heard.

    `cap_ms` models a speaker that has only emitted that much of the queued reply when the user
    barges in; `stop()` resets the stream like the real player does.
    """

    def __init__(self, cap_ms: int | None = None) -> None:
        self.cap_ms = cap_ms
        self.chunks: list[AudioChunk] = []
        self.queued_ms = 0.0
        self.stops: list[int] = []
        self.on_play: Any = None

    def play(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)
        self.queued_ms += chunk.duration_ms
        if self.on_play is not None:
            self.on_play(self)

    def flush(self) -> None:
        pass

    def stop(self) -> int:
        played = self.played_ms
        self.stops.append(played)
        self.queued_ms = 0.0
        return played

    @property
    def played_ms(self) -> int:
        q = int(self.queued_ms)
        return q if self.cap_ms is None else min(q, self.cap_ms)

    @property
    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(c.audio for c in self.chunks), dtype="<i2")

    def close(self) -> None:
        pass


CONTROL = ToolSpec(
    "control_device",
    "Send one command to one home device.",
    {
        "type": "object",
        "properties": {
            "entity_id": {"type": "string"},
            "action": {"type": "string", "enum": ["turn_on", "turn_off", "toggle", "set_brightness", "unlock"]},
            "brightness_pct": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["entity_id", "action"],
    },
)


class HomeTools:
    """A tiny ToolExecutor over a dict of entity states; 'unlock' needs confirmation."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.state: dict[str, str] = {"light.kitchen": "off", "light.living_room": "on", "lock.front_door": "locked"}
        self.failing = failing
        self.executed: list[ToolCall] = []

    def specs(self) -> list[ToolSpec]:
        return [CONTROL]

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        self.executed.append(call)
        entity, action = call.arguments["entity_id"], call.arguments["action"]
        if entity in self.failing:
            return ToolResult(call.call_id, call.name, "error", {"entity_id": entity}, "no state confirmation within 2 s")
        if action == "unlock" and not confirmed:
            return ToolResult(call.call_id, call.name, "needs_confirmation", {"entity_id": entity}, "say yes to unlock")
        # A lock has no on/off: only lock/unlock move it (the fuzz test found turn_on "unlocking" it).
        switches = {} if entity.startswith("lock.") else {"turn_on": "on", "turn_off": "off"}
        new = {**switches, "lock": "locked", "unlock": "unlocked"}.get(action, self.state.get(entity, "unknown"))
        self.state[entity] = new
        return ToolResult(call.call_id, call.name, "ok", {"entity_id": entity, "state": new})


def settings(url: str, **kw: Any) -> CloudSettings:
    base: dict[str, Any] = dict(url=url, connect_timeout_s=2.0, response_timeout_s=2.0, idle_close_s=30.0, followup_s=4.0)
    base.update(kw)
    return dataclasses.replace(CloudSettings(), **base)


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def make_client(url: str, sink: PlaybackSink | None = None, tools: HomeTools | None = None, **kw: Any) -> RealtimeClient:
    return RealtimeClient(settings(url, **kw), tools or HomeTools(), sink or PlaybackSink(), sleep=no_sleep)


def speech(ms: int) -> bytes:
    """16 kHz pcm16 'speech' (a tone) of `ms` milliseconds."""
    t = np.arange(ms * 16) / 16000
    return (np.sin(2 * np.pi * 300 * t) * 6000).astype("<i2").tobytes()


@pytest.fixture
def sink() -> PlaybackSink:
    return PlaybackSink()
