"""A risky call from the cloud runs only after the user's own spoken yes, heard by the device."""

from __future__ import annotations

from dataclasses import dataclass, field

from device.assistant import Assistant
from device.cloud.confirmation import SpokenConfirmation
from device.cloud.decision import RouteDecider
from device.events import Say, ToolCall, ToolResult, VoiceStopped
from device.tools.api import ToolSpec
from tests.assistant.test_assistant import Outcome, ScriptedRecognizer
from tests.home.conftest import demo_language

UNLOCK = ToolCall("unlock", {"entity": "lock.front_door"}, call_id="c1", source="cloud")


@dataclass
class Lock:
    executed: list[bool] = field(default_factory=list)

    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        self.executed.append(confirmed)
        status = "ok" if confirmed else "needs_confirmation"
        return ToolResult(call.call_id, call.name, status, {}, "")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_model_cannot_confirm_on_its_own() -> None:
    lock = Lock()
    tools = SpokenConfirmation(lock)
    assert (await tools.execute(UNLOCK)).status == "needs_confirmation"
    assert (await tools.execute(UNLOCK)).status == "needs_confirmation"  # asking again changes nothing
    assert lock.executed == [False, False]


async def test_spoken_yes_approves_that_exact_call_once() -> None:
    clock = Clock()
    lock = Lock()
    tools = SpokenConfirmation(lock, clock)
    await tools.execute(UNLOCK)
    tools.answer(True)
    other = ToolCall("unlock", {"entity": "lock.back_door"}, call_id="c2")
    assert (await tools.execute(other)).status == "needs_confirmation"  # not what the user agreed to
    assert (await tools.execute(UNLOCK)).status == "ok"
    assert (await tools.execute(UNLOCK)).status == "needs_confirmation"  # one yes, one action


async def test_no_or_expiry_approves_nothing() -> None:
    clock = Clock()
    tools = SpokenConfirmation(Lock(), clock)
    await tools.execute(UNLOCK)
    tools.answer(False)
    assert (await tools.execute(UNLOCK)).status == "needs_confirmation"
    tools.answer(True)
    clock.now += 120
    assert (await tools.execute(UNLOCK)).status == "needs_confirmation"


@dataclass
class ConfirmingCloud:
    """Plays the model: asks to unlock, then repeats the call after the user's answer."""

    tools: SpokenConfirmation
    results: list[str] = field(default_factory=list)

    async def turn(self, utterance: bytes) -> Outcome:
        result = await self.tools.execute(UNLOCK)
        self.results.append(result.status)
        return Outcome(tool_results=(result,), followup_s=4.0)

    async def interrupt(self, reason: str = "wake") -> int:
        return 0


async def _conversation(answer: str) -> ConfirmingCloud:
    lock = Lock()
    confirmation = SpokenConfirmation(lock)
    cloud = ConfirmingCloud(confirmation)
    events: list[object] = []

    async def emit(event: object) -> None:
        events.append(event)

    assistant = Assistant(
        emit=emit, listen=lambda ms, why: None, decider=RouteDecider(),
        recognizer=ScriptedRecognizer(["Could you let my friend in, please?", answer]),
        language=demo_language(), tools=None, cloud=cloud, cloud_confirmation=confirmation,
    )
    for _ in range(2):
        await assistant.handle(VoiceStopped(0, 0, bytes(32000)))
        await assistant.drain()
    assert not [e for e in events if isinstance(e, Say) and e.prompt == "error"]
    return cloud


async def test_assistant_passes_the_users_answer_to_the_cloud_confirmation() -> None:
    assert (await _conversation("Yes please.")).results == ["needs_confirmation", "ok"]
    assert (await _conversation("No, leave it locked.")).results == ["needs_confirmation", "needs_confirmation"]
