"""Early endpointing on real audio: the real front end (wake word, VAD), the real speech model
with the demo home's grammar, the real assistant and service, over a rendered WAV file (read as
a script of turns, so the run is the same on a loaded machine as on an idle one)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import soundfile

from device.appliance import build_frontend, load_recognizer
from device.assistant import Assistant, Recognizer, end_via, listen_via
from device.cloud.decision import RouteDecider
from device.events import Routed, Say, ToolCall, ToolResult, VoiceStopped
from device.intent.early import acts_early
from device.intent.policy import Choice
from device.service import Service
from device.settings import Settings
from device.sim.broker import Mosquitto
from device.tools.session import HomeSession
from hal.source import FileSource
from tests.frontend.conftest import SR, active_end_s, speech
from tests.home.conftest import SimHome, demo_language, settings_for


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return load_recognizer(Settings())


async def _run(recognizer: Recognizer, text: str, wav: Path, home: HomeSession | None = None) -> tuple[list[object], float]:
    """One wake word + command through the whole path; the events and the true end of speech (ms)."""
    from device.bench.speech import concat, silence

    lead, wake, gap, command = silence(0.7), speech("okay nabu"), silence(0.4), speech(text)
    soundfile.write(str(wav), concat(lead, wake, gap, command, silence(1.5)), SR)
    end_ms = 1000 * active_end_s(command, (len(lead) + len(wake) + len(gap)) / SR)
    settings = Settings()
    events: list[object] = []

    async def record(event: object) -> None:
        events.append(event)

    frontend = build_frontend(settings)
    service = Service(FileSource(wav), frontend, [record])
    assistant = Assistant(
        emit=record, listen=listen_via(service.inject), decider=RouteDecider(cloud_enabled=True),
        recognizer=recognizer, language=demo_language(home.registry if home is not None else None),
        end_now=end_via(service.inject), tools=home.tools if home is not None else None,
    )
    if home is not None:
        home.tools.on_sent = assistant.sent
    await assistant.prepare()

    async def assist(event: object) -> None:
        await assistant.handle(event)
        await assistant.drain()

    service.add_handler(assist)
    try:
        await service.run()
        await assistant.drain()
    finally:
        frontend.close()
    return events, end_ms


async def test_a_home_command_ends_at_the_pause_and_a_question_waits(recognizer: Recognizer, tmp_path: Path) -> None:
    settings = Settings().vad
    events, end_ms = await _run(recognizer, "turn on the kitchen light", tmp_path / "command.wav")
    stopped = [e for e in events if isinstance(e, VoiceStopped)]
    assert len(stopped) == 1 and stopped[0].reason == "early"
    # Decided at the pause: the audio ends early_ms (plus the VAD's own tail) after the speech,
    # well before the end_silence_ms a plain endpointer waits for.
    decided_ms = stopped[0].start_ms + 1000 * len(stopped[0].audio) / (2 * SR)
    assert decided_ms - end_ms < (settings.early_ms + settings.end_silence_ms) / 2
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("turn_on", {"entity": "light.kitchen_light"})]

    events, _ = await _run(recognizer, "what is the tallest mountain in the world", tmp_path / "question.wav")
    stopped = [e for e in events if isinstance(e, VoiceStopped)]
    assert len(stopped) == 1 and stopped[0].reason == "silence"
    assert [e.way for e in events if isinstance(e, Routed)] == ["cloud"]
    assert not any(isinstance(e, ToolCall) for e in events)


def test_the_rule_waits_for_a_value_a_longer_sentence_adds() -> None:
    language = demo_language()
    graph = language.graph()
    light, blinds = language.understand("turn on the kitchen light"), language.understand("close the living room blinds")
    assert acts_early(Choice("act", light, "both readings agree"), 0.1, graph.continuations("turn on the kitchen light"))[0]
    # 'close the blinds' may go on 'to 50 percent': a value still to come.
    ok, why = acts_early(Choice("act", blinds, "both readings agree"), 0.1, graph.continuations("close the living room blinds"))
    assert not ok and "value" in why
    assert not acts_early(Choice("act", light, "both readings agree"), 1.0, ())[0]  # doubtful audio
    everywhere = language.understand("turn on all the lights")
    ok, why = acts_early(Choice("act", everywhere, "both readings agree"), 0.1, graph.continuations("turn on all the lights"))
    assert not ok and "area" in why  # "... in the bedroom"
    # The speaker's own area has one light: the call names it, the words don't, the area may follow.
    here = demo_language(area="Kitchen")
    kitchen = here.understand("turn on the lights")
    assert kitchen.call is not None and kitchen.call.arguments == {"entity": "light.kitchen_light"}
    ok, why = acts_early(Choice("act", kitchen, "both readings agree"), 0.1, here.graph().continuations("turn on the lights"))
    assert not ok and "area" in why
    # An area-wide command that names its area can't go on: nothing to wait for.
    bedroom = language.understand("turn on the lights in the bedroom")
    assert bedroom.call is not None and "entity" not in bedroom.call.arguments
    assert graph.continuations("turn on the lights in the bedroom") == ()
    assert acts_early(Choice("act", bedroom, "both readings agree"), 0.1, graph.continuations("turn on the lights in the bedroom"))[0]
    # ... but only on audio that clearly says it, like a named device.
    assert not acts_early(Choice("act", bedroom, "both readings agree"), 1.0, ())[0]
    assert graph.continuations("set the thermostat to 19 degrees") == ()
    assert set(graph.continuations("set the thermostat to 19")) >= {" degrees"}


async def test_the_command_is_read_while_spoken_and_the_done_earcon_starts_on_the_publish(
        recognizer: Recognizer, mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sim = SimHome(mosquitto)
    home = HomeSession(settings_for(mosquitto))
    try:
        await home.open()
        with caplog.at_level(logging.DEBUG, logger="device.listening.reads"):
            events, end_ms = await _run(recognizer, "switch off the bedroom light", tmp_path / "command.wav", home)
    finally:
        await home.close()
        sim.stop()
    stopped = [e for e in events if isinstance(e, VoiceStopped)]
    assert len(stopped) == 1 and stopped[0].reason == "early"
    # Read while it was spoken: readings of the audio before its end, one at a time (the file
    # runs faster than real time, so one of half the command may be given up at the pause).
    heard = [float(str(r.args[0])) for r in caplog.records
             if r.msg.startswith("read the command up to") and isinstance(r.args, tuple)]
    given_up = [float(str(r.args[0])) for r in caplog.records
                if r.msg.startswith("gave up reading the command up to") and isinstance(r.args, tuple)]
    assert any(h < end_ms for h in heard + given_up) and any(h >= end_ms for h in heard)
    # The earcon is said as soon as the command is on the broker: before the light confirms,
    # and the spoken answer after it.
    kinds = [(type(e).__name__, getattr(e, "prompt", None), getattr(e, "text", None) is not None)
             for e in events if isinstance(e, ToolCall | ToolResult | Say)]
    assert kinds == [("ToolCall", None, False), ("Say", "done", False), ("ToolResult", None, False), ("Say", "done", True)]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.status == "ok"
