"""The assistant's decisions: local first, constrained decoding, confirmation, cloud, barge-in.

The recognizer and the cloud are replaced at their seams by objects implementing the same
protocol (the real ones are tested in tests/asr and tests/cloud, and end to end in
tests/assistant/test_run.py); the registry and the local understanding are the real ones,
loaded from the demo home's discovery payloads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from device.assistant import Assistant, yes_or_no
from device.cloud.decision import RouteDecider
from device.cloud.realtime import CloudOutcome
from device.events import (
    CloudReply,
    Detection,
    Interrupted,
    ListenTimeout,
    Routed,
    Say,
    ToolCall,
    ToolResult,
    Transcript,
    VoiceStopped,
)
from device.tools.api import ToolSpec
from models.asr.grammar_search import Hypothesis
from tests.home.conftest import demo_language

UTTERANCE = VoiceStopped(timestamp_ms=3000, start_ms=1000, audio=bytes(32000))


@dataclass(frozen=True)
class Heard:
    """What the real runner's Details say about the two readings (models/asr/runner.py)."""

    grammar: tuple[Hypothesis, ...] = ()
    mean_logprob: float = -0.2


@dataclass
class ScriptedRecognizer:
    """Free texts in order; the grammar's best sentence with its per-token log-probability gap
    against the free reading (0 = the audio says it as well as the free text, 3 = forced)."""

    texts: list[str]
    best_sentence: str = ""
    gap: float = 0.0
    searched: list[object] = field(default_factory=list)

    def transcribe(self, audio: np.ndarray, search: Any = None, stop: Any = None,
                   search_if: Any = None) -> tuple[str, Any]:
        assert audio.dtype == np.float32 and len(audio) == 16000
        text = self.texts.pop(0)
        if search is None or not self.best_sentence or (search_if is not None and not search_if(text)):
            return text, Heard()
        self.searched.append(search)
        tokens = (1, 2, 3, 4)
        hyp = Hypothesis(" " + self.best_sentence, tokens, (-0.2 - self.gap) * len(tokens), (-0.2 - self.gap,) * len(tokens))
        return text, Heard((hyp,))

    def prepare(self, graph: Any) -> Any:
        assert graph.count_sentences() > 1000  # the demo home's real sentence graph
        return graph


@dataclass
class RecordingTools:
    """Risky calls need confirmation, everything else succeeds; every call is recorded."""

    calls: list[tuple[ToolCall, bool]] = field(default_factory=list)

    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        self.calls.append((call, confirmed))
        if call.name == "unlock" and not confirmed:
            return ToolResult(call.call_id, call.name, "needs_confirmation", {}, "Unlock the front door?")
        return ToolResult(call.call_id, call.name, "ok", {}, "Done.")


def Outcome(**changes: Any) -> CloudOutcome:  # noqa: N802 - reads as the outcome it builds
    """The real client's outcome type, with a sunny answer unless told otherwise."""
    base: dict[str, Any] = {"status": "ok", "reply_text": "It is sunny.", "user_text": "what's the weather",
                            "played_ms": 1200, "followup_s": 4.0}
    return CloudOutcome(**(base | changes))


@dataclass
class SlowCloud:
    outcome: CloudOutcome = field(default_factory=Outcome)
    turns: int = 0
    interrupts: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def turn(self, utterance: bytes) -> CloudOutcome:
        self.turns += 1
        await self.release.wait()
        return self.outcome

    async def interrupt(self, reason: str = "wake") -> int:
        self.interrupts += 1
        self.release.set()
        return 700


class Harness:
    def __init__(self, recognizer: ScriptedRecognizer, *, cloud: SlowCloud | None = None, cloud_enabled: bool = True) -> None:
        self.events: list[object] = []
        self.listens: list[tuple[int, str]] = []
        self.tools = RecordingTools()
        self.cloud = cloud
        self.assistant = Assistant(
            emit=self._emit,
            listen=lambda ms, why: self.listens.append((ms, why)),
            decider=RouteDecider(cloud_enabled=cloud_enabled),
            recognizer=recognizer,
            language=demo_language(),
            tools=self.tools,
            cloud=cloud,
        )

    async def _emit(self, event: object) -> None:
        self.events.append(event)

    async def utter(self) -> None:
        await self.assistant.handle(UTTERANCE)
        await self.assistant.drain()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_confident_home_command_runs_locally() -> None:
    h = Harness(ScriptedRecognizer(["Turn on the kitchen light."]))
    await h.utter()
    assert [c.name for c, _ in h.tools.calls] == ["turn_on"]
    call = h.tools.calls[0][0]
    assert "kitchen" in str(call.arguments).lower()
    route = h.of(Routed)[0]
    assert route.way == "local" and route.kind == "tool"
    assert h.of(Say)[-1].prompt == "done"


async def test_constrained_decoding_rescues_a_garbled_transcript() -> None:
    # Whisper heard nonsense, but the grammar's best sentence is confidently a command.
    rec = ScriptedRecognizer(["Turn of the kitchen lied."], best_sentence="turn off the kitchen light", gap=0.1)
    h = Harness(rec)
    await h.utter()
    assert rec.searched  # the home's sentence graph was searched on this utterance
    transcript = h.of(Transcript)[0]
    assert transcript.command == "turn off the kitchen light" and transcript.command_confidence == pytest.approx(0.905, abs=0.01)
    assert [c.name for c, _ in h.tools.calls] == ["turn_off"]


async def test_unsure_grammar_match_does_not_override_a_question_for_the_cloud() -> None:
    cloud = SlowCloud()
    cloud.release.set()
    # The grammar always finds *some* sentence; forced onto other speech it costs several nats a token.
    rec = ScriptedRecognizer(["What's the weather like tomorrow?"], best_sentence="turn on the fan", gap=3.0)
    h = Harness(rec, cloud=cloud)
    await h.utter()
    # The grammar's best sentence shares nothing with what was said: not a home command.
    assert h.tools.calls == [] and cloud.turns == 1
    assert h.of(Routed)[0].way == "cloud"
    assert h.of(CloudReply)[0].reply_text == "It is sunny."
    assert h.listens == [(4000, "followup")]


async def test_unknown_device_is_refused_locally_not_guessed() -> None:
    h = Harness(ScriptedRecognizer(["Turn on the sauna."]))
    await h.utter()
    assert h.tools.calls == []
    say = h.of(Say)[-1]
    assert say.prompt == "unknown_device" and "sauna" in (say.text or "")


async def test_risky_action_waits_for_a_spoken_yes() -> None:
    h = Harness(ScriptedRecognizer(["Unlock the front door.", "Yes, do it."]))
    await h.utter()
    assert [(c.name, ok) for c, ok in h.tools.calls] == [("unlock", False)]
    assert h.of(Say)[-1].prompt == "are_you_sure"
    assert h.listens and h.listens[-1][1] == "confirm"
    await h.utter()
    assert [(c.name, ok) for c, ok in h.tools.calls] == [("unlock", False), ("unlock", True)]


async def test_risky_action_is_cancelled_by_no_or_silence() -> None:
    h = Harness(ScriptedRecognizer(["Unlock the front door.", "No."]))
    await h.utter()
    await h.utter()
    assert [ok for _, ok in h.tools.calls] == [False]
    assert h.of(Say)[-1].prompt == "cancelled"
    h2 = Harness(ScriptedRecognizer(["Unlock the front door."]))
    await h2.utter()
    await h2.assistant.handle(ListenTimeout(9000))
    assert h2.of(Say)[-1].prompt == "cancelled"
    assert [ok for _, ok in h2.tools.calls] == [False]


async def test_privacy_switch_keeps_questions_on_the_device() -> None:
    cloud = SlowCloud()
    h = Harness(ScriptedRecognizer(["Tell me a joke."]), cloud=cloud, cloud_enabled=False)
    await h.utter()
    assert cloud.turns == 0
    assert h.of(Routed)[0].way == "drop"
    assert h.of(Say)[-1].prompt == "cloud_disabled"


async def test_wake_word_during_a_cloud_reply_interrupts_it() -> None:
    cloud = SlowCloud(Outcome(status="interrupted", followup_s=0.0))
    h = Harness(ScriptedRecognizer(["Tell me a long story."]), cloud=cloud)
    await h.assistant.prepare()  # as the service does at start-up: the sentence graph is ready
    await h.assistant.handle(UTTERANCE)
    for _ in range(200):  # the utterance is read in a worker thread
        if cloud.turns:
            break
        await asyncio.sleep(0.01)
    assert cloud.turns == 1
    await h.assistant.handle(Detection("okay_nabu", 0.98, 5000))
    await h.assistant.drain()
    assert cloud.interrupts == 1
    assert h.of(Interrupted)[0].timestamp_ms == 5000
    assert h.of(CloudReply)[0].status == "interrupted"
    assert h.listens == []


async def test_a_failing_command_is_reported_and_the_assistant_keeps_going() -> None:
    class Broken(ScriptedRecognizer):
        def transcribe(self, audio: np.ndarray) -> tuple[str, Any]:
            raise RuntimeError("onnx exploded")

    h = Harness(Broken([]))
    await h.utter()
    assert h.of(Say)[-1].prompt == "error"
    h.assistant._recognizer = ScriptedRecognizer(["Turn on the kitchen light."])  # noqa: SLF001
    await h.utter()
    assert [c.name for c, _ in h.tools.calls] == ["turn_on"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [("Yes.", True), ("yeah go ahead", True), ("No.", False), ("no, don't", False), ("cancel", False), ("banana", None), ("", None)],
)
def test_yes_or_no(text: str, answer: bool | None) -> None:
    assert yes_or_no(text) is answer


async def test_start_up_runs_the_sentence_matcher_once_and_a_failure_there_is_not_fatal(caplog: Any) -> None:
    from device.assistant import WARM_UP

    h = Harness(ScriptedRecognizer(["Turn on the kitchen light."]))
    language = h.assistant._language  # noqa: SLF001
    assert language is not None
    heard: list[str] = []
    real = language.understand

    def understand(text: str) -> Any:
        heard.append(text)
        if text == WARM_UP:
            raise RuntimeError("templates exploded")
        return real(text)

    language.understand = understand  # type: ignore[method-assign]
    await h.assistant.prepare()
    assert heard == [WARM_UP] and "warm-up" in caplog.text
    assert real(WARM_UP).kind != "tool"  # no home has it: nothing could ever be switched by it
    await h.utter()  # and the service goes on
    assert [c.name for c, _ in h.tools.calls] == ["turn_on"]
