"""Hypothesis: the cloud model's tool calls against the real home tools.

tests/cloud/test_fuzz.py fuzzes the argument parser over a one-tool stand-in; this goes through
the real thing the model drives: `run_tool` (JSON → schema of every real tool) → the spoken
confirmation → the real HomeTools over the demo home, optionally poisoned by a hostile discovery
config (topic aliases of the lock and garage, system topics). Sequences of calls, with the user's
answers in between (hedges, negations, questions, clear yeses, through the real understanding).
Properties: every call gets one result (never an exception, never a tool crash), nothing goes out
on a topic outside the policy, and nothing that opens the house goes out unless the user clearly
said yes to exactly that call. The oracles are the bench's (device/bench/hostile.py), written
apart from the policy they check.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from device.bench.hostile import risky, stray
from device.bench.hostile_inputs import TARGETS, VALUES, hostile_discovery
from device.bench.hostile_wire import Recorder
from device.cloud.calls import run_tool, tool_output
from device.cloud.confirmation import SpokenConfirmation
from device.intent.answers import yes_or_no
from device.tools.tools import _TOOLS, HomeTools
from tests.home.conftest import demo_registry
from tests.home.test_fuzz import CONFIG

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HOSTILE = hostile_discovery()
ANSWERS = [("yes", True), ("yes please", True), ("sure, go ahead", True), ("I'm not sure", False), ("okay, hold on", False),
           ("yes but not now", False), ("sure?", False), ("no", False), ("not okay", False), ("maybe", False), ("", False),
           ("what was that", False), ("okay", True), ("do it", True)]
KEYS = sorted({spec[3] for spec in _TOOLS.values() if spec[3]} | {"entity", "area", "domain", "rgb", "confirmed", "topic", "payload"})
SCALAR = st.one_of(st.sampled_from(VALUES), st.integers(), st.floats(allow_nan=True), st.text(max_size=12), st.none(), st.booleans())
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


RISKY_TARGETS = st.sampled_from(["front door", "lock.front_door", "garage door", "porch fan", "garage lamp", "hall fan",
                                  "alarm plug", "json door", "side gate"])


@st.composite
def arguments(draw: st.DrawFn, name: str) -> str:
    """Mostly schema-valid (so calls reach the targets and the publish), sometimes anything."""
    kind = draw(st.sampled_from(["plausible"] * 6 + ["any"] * 3 + ["raw"]))
    if kind == "raw":
        return draw(st.text(max_size=60) | st.sampled_from(["null", "[]", '"lock.front_door"', "{", "[" * 5000 + "]" * 5000, "1e999"]))
    args: dict[str, Any] = {}
    spec = _TOOLS.get(name)
    if kind == "plausible" and spec is not None:
        if draw(st.booleans()) or not spec[5]:
            args["entity"] = draw(RISKY_TARGETS | st.sampled_from(TARGETS))
        else:
            args["area"] = draw(st.sampled_from(["Kitchen", "Garage", "Bedroom", "all"]))
        if spec[3]:
            args[spec[3]] = draw(st.integers(0, 100) | st.sampled_from(["heat", "off", "red", "sleep"]) | VALUE)
    else:
        args.update(draw(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), VALUE, max_size=3)))
    try:
        return json.dumps(args)
    except ValueError:
        return "{}"


@st.composite
def call(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(["unlock", "open_cover", "turn_on", "set_cover_position"]) | st.sampled_from(sorted(_TOOLS))
                | st.sampled_from(["", "nope", "x" * 200]))
    return name, draw(arguments(name))


@FUZZ
@given(calls=st.lists(call(), min_size=1, max_size=4), evil=st.none() | st.sampled_from(HOSTILE) | CONFIG,
       data=st.data())
def test_cloud_tool_calls_stay_inside_the_policy_and_need_a_real_yes(calls: list[tuple[str, str]], evil: Any, data: st.DataObject) -> None:
    registry = demo_registry()
    if isinstance(evil, tuple):
        registry.handle(*evil)
    elif isinstance(evil, dict):
        registry.handle("homeassistant/switch/evil/config", json.dumps(evil).encode())
    link = Recorder(registry)
    confirmation = SpokenConfirmation(HomeTools(registry, link, timeout_s=0.001))
    approved: tuple[str, str] | None = None

    async def go() -> None:
        nonlocal approved
        queue = list(calls)
        while queue:
            name, args = queue.pop(0)
            sent = len(link.sent)
            result = await run_tool(confirmation, "c", name, args, timeout_s=2.0)
            assert result.status in ("ok", "error", "needs_confirmation", "unconfirmed")
            assert not result.message.startswith("tool failed"), result.message  # a crash run_tool caught
            json.loads(tool_output(result))
            event(f"status {result.status}")
            for topic, payload in link.sent[sent:]:
                assert not stray(topic, payload, registry.command_topics()), (topic, payload)
                assert not risky(topic, payload) or approved == (name, args), (name, args, topic, payload)
                event("a risky publish after a clear yes" if risky(topic, payload) else "a publish")
            if approved == (name, args):
                approved = None  # one yes, one action
            if result.status == "needs_confirmation" and confirmation.waiting is not None:
                text, means_yes = data.draw(st.sampled_from(ANSWERS))
                heard = yes_or_no(text)
                assert heard is not True or means_yes, text
                confirmation.answer(heard)
                approved = (name, args) if heard is True else approved
                if data.draw(st.booleans()):
                    queue.insert(0, (name, args))  # the model calls again after the answer

    asyncio.run(go())
