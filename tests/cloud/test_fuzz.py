"""Property-based fuzzing of the realtime parser and the cloud tool arguments.

Inputs are the recorded server events of every transcript (both dialects), mutated anywhere in
their tree (a value replaced by any JSON value, a key dropped, a type swapped for another known
type), plus raw bytes, deep nesting and oversized frames. The property: the parser returns typed
events or raises CloudError('cloud-bad-event'), never anything else, and quickly (the deadline
is the hang check). Run with --hypothesis-show-statistics to see the counts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.cloud import protocol as p
from device.cloud.calls import run_tool, tool_output
from device.cloud.fake_server import load_transcript
from device.errors import CloudError
from tests.cloud.conftest import EVENTS, HomeTools

SERVER_EVENTS: list[tuple[p.Dialect, dict[str, Any]]] = [
    ("beta" if path.name.endswith(".beta.jsonl") else "ga", event)
    for path in sorted(EVENTS.glob("*.jsonl"))
    for direction, event in load_transcript(path)
    if direction == "server"
]
KNOWN_TYPES = sorted({e["type"] for _, e in SERVER_EVENTS} | set(p.BETA_TO_GA))
TYPED = tuple(t for t in p.ServerEvent.__args__)
FUZZ = settings(max_examples=1500, deadline=250, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=1 << 63, max_value=1 << 600)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += paths(inner, (*prefix, index))
    return out


def mutate(event: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return value
    tree = json.loads(json.dumps(event))
    holder = tree
    for step in path[:-1]:
        holder = holder[step]
    if how == "drop" and isinstance(holder, dict):
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return tree


def check(frame: str | bytes, dialect: p.Dialect) -> None:
    try:
        events = p.parse_server_event(frame, dialect)
    except CloudError as err:
        assert err.code == "cloud-bad-event" and len(err.message) < 400
        return
    assert events and all(isinstance(e, TYPED) for e in events)
    for event in events:  # typed means typed: str fields hold str, int fields int
        for f in fields(event):
            value = getattr(event, f.name)
            if f.type in ("str",):
                assert isinstance(value, str)
            if f.type in ("int",):
                assert isinstance(value, int)


def test_every_recorded_server_event_parses_into_a_typed_event() -> None:
    for dialect, event in SERVER_EVENTS:
        for typed in p.parse_server_event(json.dumps(event), dialect):
            assert isinstance(typed, TYPED)


@FUZZ
@given(data=st.data(), index=st.integers(0, len(SERVER_EVENTS) - 1), how=st.sampled_from(["set", "drop"]))
def test_fuzz_mutated_recorded_events(data: st.DataObject, index: int, how: str) -> None:
    dialect, event = SERVER_EVENTS[index]
    path = data.draw(st.sampled_from(paths(event)[1:]))
    value = data.draw(json_values | st.sampled_from(KNOWN_TYPES))
    frame = json.dumps(mutate(event, path, how, value))
    check(frame, dialect)


@FUZZ
@given(data=st.data(), index=st.integers(0, len(SERVER_EVENTS) - 1), kind=st.sampled_from(KNOWN_TYPES))
def test_fuzz_events_under_another_known_type(data: st.DataObject, index: int, kind: str) -> None:
    """A known type with another event's body: every field is then missing or of the wrong type."""
    dialect, event = SERVER_EVENTS[index]
    check(json.dumps({**event, "type": kind}), data.draw(st.sampled_from([dialect, "ga", "beta"])))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200), dialect=st.sampled_from(["ga", "beta"]))
def test_fuzz_raw_frames(raw: str | bytes, dialect: p.Dialect) -> None:
    check(raw, dialect)


@settings(max_examples=200, deadline=1000)
@given(depth=st.integers(1, 300_000), kind=st.sampled_from(KNOWN_TYPES), opener=st.sampled_from(["[", '{"a":']),
       where=st.sampled_from(["response", "item", "error", "delta", "x"]))
def test_fuzz_deep_nesting(depth: int, kind: str, opener: str, where: str) -> None:
    closer = "]" if opener == "[" else "}"
    check(f'{{"type":"{kind}","{where}":' + opener * depth + "1" + closer * depth + "}", "ga")


@settings(max_examples=30, deadline=2000)
@given(size=st.integers(p.MAX_FRAME_BYTES - 64, 3 * p.MAX_FRAME_BYTES))
def test_fuzz_oversized_frames(size: int) -> None:
    frame = '{"type":"response.output_audio_transcript.delta","response_id":"r","item_id":"i","delta":"' + "a" * size + '"}'
    check(frame, "ga")


home = HomeTools()
ARGUMENT_KEYS = st.sampled_from(["entity_id", "action", "brightness_pct", "extra"])


@settings(max_examples=600, deadline=500)
@given(arguments=st.one_of(
    st.none(), st.text(max_size=100),
    st.dictionaries(ARGUMENT_KEYS, json_values | st.sampled_from(["light.kitchen", "lock.front_door", "unlock", "turn_on"]),
                    max_size=4).map(json.dumps),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
), name=st.sampled_from(["control_device", "nope", "", "x" * 500]))
def test_fuzz_cloud_tool_arguments(arguments: str | None, name: str) -> None:
    """Any arguments give one result and never an exception; nothing unlocks without confirmation."""
    result = asyncio.run(run_tool(home, "call_1", name, arguments, timeout_s=1.0))
    assert result.status in ("ok", "error", "needs_confirmation")
    json.loads(tool_output(result))
    assert home.state["lock.front_door"] == "locked"
