"""With German configured, the speaker judges the spoken answer in German: 'ja, bitte' confirms
its own question and the cloud's, 'ja, aber warte' and English hedges never do."""

from __future__ import annotations

import functools

import pytest

from device.assistant import Assistant
from device.cloud.confirmation import SpokenConfirmation
from device.cloud.decision import RouteDecider
from device.events import Say, VoiceStopped
from device.intent.language import HomeLanguage
from tests.assistant.test_assistant import ScriptedRecognizer
from tests.assistant.test_confirmation import ConfirmingCloud, Lock
from tests.home.conftest import demo_registry


@functools.cache
def german() -> HomeLanguage:
    return HomeLanguage(demo_registry(), language="de")


async def _talk(texts: list[str], *, cloud: bool) -> tuple[list[bool], list[object]]:
    lock = Lock()
    confirmation = SpokenConfirmation(lock)
    events: list[object] = []

    async def emit(event: object) -> None:
        events.append(event)

    assistant = Assistant(
        emit=emit, listen=lambda ms, why: None, decider=RouteDecider(),
        recognizer=ScriptedRecognizer(list(texts)), language=german(),
        tools=None if cloud else lock, cloud=ConfirmingCloud(confirmation) if cloud else None,
        cloud_confirmation=confirmation if cloud else None,
    )
    for _ in texts:
        await assistant.handle(VoiceStopped(0, 0, bytes(32000)))
        await assistant.drain()
    return lock.executed, events


@pytest.mark.parametrize("answer,unlocked", [
    ("Ja, bitte.", True), ("genau", True), ("Ja, aber warte.", False), ("Ich weiß nicht", False),
    ("okay, hold on", False), ("sicher?", False), ("nein", False),
])
async def test_german_answer_to_the_speakers_own_question(answer: str, unlocked: bool) -> None:
    executed, events = await _talk(["schließe die Front Door auf", answer], cloud=False)
    assert executed[0] is False  # asked first
    assert (True in executed) is unlocked, events
    assert not [e for e in events if isinstance(e, Say) and e.prompt == "error"]


@pytest.mark.parametrize("answer,unlocked", [("Ja, bitte.", True), ("vielleicht ja", False), ("yes but not now", False)])
async def test_german_answer_to_the_clouds_question(answer: str, unlocked: bool) -> None:
    executed, events = await _talk(["Kannst du meinen Freund reinlassen?", answer], cloud=True)
    assert executed[0] is False
    assert (True in executed) is unlocked, events
