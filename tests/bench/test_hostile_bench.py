"""`voxhome bench hostile` on the tiny catalogue: the real parts count nothing bad, and each counter
counts when a part is swapped for a broken one (a crashing config loader, a hanging one, a tool
that publishes onto Home Assistant's status topic and crashes on one call, an understanding that
takes everything for a yes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from device.bench.hostile import Counts, Hooks, report, run, run_bench, totals
from device.bench.hostile_inputs import catalogue
from device.events import ToolCall, ToolResult
from device.settings import Settings, load_settings
from device.tools.api import ToolExecutor, ToolSpec
from device.tools.registry import Registry

PARTS = {"configs", "answers", "frames", "cloud turns", "discovery", "tool calls"}


def test_the_real_parts_on_the_tiny_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argparse.Namespace(size="tiny", json=True, verbose=0)) == 0
    out = json.loads(capsys.readouterr().out)
    parts = {name: Counts(**{k: v for k, v in c.items()}) for name, c in out["parts"].items()}
    assert set(parts) == PARTS
    assert all(c.tried > 0 for c in parts.values())
    total = totals(parts)
    assert (total.crashes, total.hangs, total.stray, total.risky) == (0, 0, 0, 0), report(parts)
    assert out["total"]["tried"] == total.tried >= catalogue("tiny").total()
    # The risky path is really exercised: calls asked, and a clear yes let them through.
    assert parts["tool calls"].asked >= 2 and parts["tool calls"].approved >= 1
    assert parts["answers"].missed_yes == 0


class Broken:
    """A home tool executor gone wrong: it publishes onto a system topic behind the policy's back
    and crashes on one call."""

    def __init__(self, tools: ToolExecutor, settings: Settings) -> None:
        self.tools = tools
        self.mqtt = settings.mqtt

    def specs(self) -> list[ToolSpec]:
        return self.tools.specs()

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        publish.single("homeassistant/status", b"offline", hostname=self.mqtt.host, port=self.mqtt.port)
        if call.arguments.get("entity") == "garage door":
            raise RuntimeError("boom")
        return await self.tools.execute(call, confirmed=confirmed)


def test_each_counter_counts_a_broken_part() -> None:
    import time

    def check_config(path: Path) -> object:
        if path.name == "0.toml":
            raise RuntimeError("a loader bug")
        if path.name == "1.toml":
            time.sleep(3.0)
        return Registry(load_settings(path, required=True).home)

    hooks = Hooks(check_config=check_config, understand=lambda text, language: True, wrap_tools=Broken, deadline_s=2.5)
    parts = run_bench("tiny", hooks)
    assert parts["configs"].crashes == 1 and parts["configs"].hangs == 1
    assert any("a loader bug" in n for n in parts["configs"].notes)
    non_yes = sum(not a.yes for a in catalogue("tiny").answers)
    assert parts["answers"].risky == non_yes > 0
    tools = parts["tool calls"]
    assert tools.crashes >= 1  # the crash run_tool caught and logged still counts
    assert tools.stray >= tools.tried // 2  # every execute published onto homeassistant/status
    assert tools.risky >= 1  # an answer that wasn't a yes let a risky call through
    assert "stray publish 'homeassistant/status'" in report(parts)
