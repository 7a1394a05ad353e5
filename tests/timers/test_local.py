"""Timers as the assistant drives them: spoken intents in, HA's answers out, a ring that 'stop' ends,
and timers that outlive the service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from device.events import Say
from device.intent.decision import Decision
from device.intent.responses import Responses
from device.timers.local import LocalTimers
from tests.home.conftest import demo_language


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _timers(tmp_path: Path, clock: Clock, said: list[Say]) -> tuple[LocalTimers, Responses]:
    language = demo_language()

    async def emit(event: object) -> None:
        assert isinstance(event, Say)
        said.append(event)

    # The fake clock is both wall and steady time: time passes, the clock is never stepped.
    return LocalTimers(tmp_path, emit=emit, responses=language.responses, clock=clock, steady=clock), language.responses


def _do(timers: LocalTimers, text: str) -> Say:
    decision: Decision = demo_language().understand(text)
    assert decision.kind == "timer" and decision.action is not None, decision
    return timers.handle(decision.action[0], decision.action[1])


def test_a_spoken_conversation_with_timers(tmp_path: Path) -> None:
    clock, said = Clock(), []
    timers, _ = _timers(tmp_path, clock, said)
    assert _do(timers, "set a timer for 5 minutes").text == "Timer set for 5 minutes."
    assert _do(timers, "set a pasta timer for 10 minutes").text == "Timer set for 10 minutes named pasta."
    clock.now += 90
    status = _do(timers, "how much time is left on the pasta timer").text or ""
    assert "8 minutes and 30 seconds" in status
    assert _do(timers, "pause the pasta timer").text == "Timer paused."
    assert _do(timers, "cancel the timer for 5 minutes").prompt == "done"
    # Nothing left to cancel: an answer, not an exception.
    assert _do(timers, "cancel the 5 minute timer").prompt == "error"


def test_timers_survive_a_restart_and_ring_until_stopped(tmp_path: Path) -> None:
    clock, said = Clock(), []
    first, _ = _timers(tmp_path, clock, said)
    _do(first, "set a timer for 2 minutes")
    # The service stops; the deadline passes while it is down; a new one starts.
    clock.now += 600
    second, _ = _timers(tmp_path, clock, said)

    async def scenario() -> None:
        runner = asyncio.create_task(second.run())
        for _ in range(50):
            await asyncio.sleep(0.01)
            if said:
                break
        assert said and said[0].prompt == "timer" and said[0].text == "Your timer is done."
        assert second.stop_ring() is True
        assert second.stop_ring() is False  # nothing rings any more
        runner.cancel()

    asyncio.run(scenario())
