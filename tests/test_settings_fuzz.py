"""Hypothesis: any config text either loads or stops with one ConfigError line, never a traceback.

Inputs are TOML documents over the real settings tree (every section and key, found by walking
the dataclasses) with values of the right type, the wrong type, out of range, non-finite, huge,
unicode and nested, plus unknown keys; mutations of the shipped example config; raw bytes; and
nesting deep enough to exhaust a recursive parser. What loads must also build the static home
(`home.devices[].config` is JSON inside the TOML), which may refuse it only with a VoxError.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from device.__main__ import main
from device.errors import ConfigError, VoxError
from device.settings import Settings, load_settings
from device.tools.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "systemd" / "config.toml.example").read_text(encoding="utf-8")
CODES = {"config-syntax", "config-type", "config-value", "config-unknown-key", "discovery-invalid"}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _fields(cls: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(dotted path, type) of every leaf key of the settings tree; lists of tables as one level."""
    out: list[tuple[tuple[str, ...], Any]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _fields(tp, (*prefix, f.name))
        else:
            out.append(((*prefix, f.name), tp))
    return out


LEAVES = _fields(Settings)
SECTIONS = sorted({path[:-1] for path, _ in LEAVES if len(path) > 1})
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 70000), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.sampled_from(["", " ", "alsa", "file", "ga", "beta", "okay_nabu", "/nonexistent", "é", "\x00", "a\nb", "../../etc"]),
    st.datetimes(max_value=datetime.datetime(9999, 1, 1)), st.dates(), st.times(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def toml_value(value: Any) -> str:
    """A TOML inline value (None has no TOML spelling: it becomes an empty table)."""
    if value is None:
        return "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise AssertionError(type(value))


def toml_document(assignments: list[tuple[tuple[str, ...], Any]]) -> str:
    """One table per top-level key, written inline; a later assignment wins (TOML forbids redefining)."""
    tree: dict[str, Any] = {}
    for path, value in assignments:
        holder = tree
        for step in path[:-1]:
            if not isinstance(holder.get(step), dict):
                holder[step] = {}
            holder = holder[step]
        holder[path[-1]] = value
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in tree.items())


def typed(tp: Any) -> st.SearchStrategy[Any]:
    """A value of the key's own type (often in range), so validation gets past the type check."""
    base = next((a for a in typing.get_args(tp) if a is not type(None)), tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp
    if base is bool:
        return st.booleans()
    if base is int:
        return st.integers(0, 100) | st.integers(1000, 70000) | st.integers(-5, 5)
    if base is float:
        return st.floats(0, 2) | st.floats(0, 200) | st.sampled_from([math.nan, math.inf, 1e308])
    if base is str:
        return TEXT | st.sampled_from(["x", "light.kitchen", "en", "de", "/tmp", "okay_nabu"])
    if typing.get_origin(base) is tuple and typing.get_args(base)[0] is str:
        return st.lists(TEXT, max_size=3)
    return VALUES


@st.composite
def assignment(draw: st.DrawFn) -> tuple[tuple[str, ...], Any]:
    """One key of the real tree (mostly), a section or an unknown key, with any value."""
    kind = draw(st.sampled_from(["leaf", "leaf", "leaf", "section", "unknown"]))
    if kind == "leaf":
        path, tp = draw(st.sampled_from(LEAVES))
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) is typing.Literal and draw(st.booleans()):
            return path, draw(st.sampled_from(args))  # a valid choice, so the rest gets checked
        if typing.get_origin(tp) is tuple and dataclasses.is_dataclass(args[0]) and draw(st.booleans()):
            # A list of tables ([[wake.words]], [[home.devices]]) with fuzzed keys of that table.
            inner = _fields(args[0])
            items = draw(st.lists(st.dictionaries(st.sampled_from([p[0] for p, _ in inner]) | TEXT, VALUES, max_size=4), max_size=3))
            return path, items
        return path, draw(typed(tp) if draw(st.integers(0, 3)) else VALUES)
    if kind == "section":
        return draw(st.sampled_from(SECTIONS)), draw(VALUES)
    path = draw(st.sampled_from(SECTIONS))
    return (*path, draw(TEXT)), draw(VALUES)


def check(path: Path) -> Settings | None:
    """Loads, or one ConfigError line with a stable code; what loads builds the home or says why not."""
    try:
        loaded = load_settings(path, required=True)
        Registry(loaded.home)
    except VoxError as err:
        assert isinstance(err, ConfigError) or err.code == "discovery-invalid"
        assert err.code in CODES, err.code
        assert "\n" not in err.message and len(err.message) < 1000 + len(str(path)), err.message
        return None
    return loaded


@FUZZ
@given(assignments=st.lists(assignment(), min_size=1, max_size=6))
@example(assignments=[(("cloud", "speed"), 10**400)])  # found: OverflowError converting to float
@example(assignments=[(("mqtt", "reconnect_min_s"), math.nan)])  # found: nan passed every range check
@example(assignments=[(("asr", "\n"), 1)])  # found: an unknown key with a newline made a two-line message
@example(assignments=[(("cloud", "turn_timeout_s"), math.inf), (("cloud", "response_timeout_s"), math.inf)])
@example(assignments=[(("home", "devices"), [{"id": "light.x", "name": "x", "config": "[" * 50_000 + "]" * 50_000}])])
def test_fuzz_documents_over_the_settings_tree(tmp_path_factory: pytest.TempPathFactory, assignments: list[tuple[tuple[str, ...], Any]]) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(toml_document(assignments), encoding="utf-8")
    loaded = check(path)
    if loaded is not None:  # anything that loaded is finite where it is a number
        for leaf, _ in LEAVES:
            value: Any = loaded
            for step in leaf:
                value = getattr(value, step)
            if isinstance(value, float):
                assert math.isfinite(value), leaf


@FUZZ
@given(start=st.integers(0, len(EXAMPLE)), length=st.integers(0, 40), insert=TEXT | st.sampled_from(['"', "[", "]]", "=", "\n[", "{", "\\u", "0x", "1e999"]))
def test_fuzz_mutations_of_the_example_config(tmp_path_factory: pytest.TempPathFactory, start: int, length: int, insert: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(EXAMPLE[:start] + insert + EXAMPLE[start + length:], encoding="utf-8")
    check(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
@example(raw=b"\xff\xfe[vad]")
@example(raw=b"[cloud]\nmodel = 1" + b"0" * 5000)  # found: tomllib's int digit limit is a ValueError
def test_fuzz_raw_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(raw)
    check(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", "{a = "]),
       key=st.sampled_from(["wake.words", "mqtt.risky", "vad", "x"]))
def test_fuzz_deep_nesting(tmp_path_factory: pytest.TempPathFactory, depth: int, opener: str, key: str) -> None:
    closer = "]" if opener == "[" else "}"
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(f"{key} = " + opener * depth + "1" + closer * depth + "\n")
    check(path)


@pytest.mark.parametrize("text", [
    "[cloud]\nspeed = 1" + "0" * 400 + "\n",
    "[cloud]\nmodel = 1" + "0" * 5000 + "\n",
    "[mqtt]\ncommand_timeout_s = nan\n",
    "[device]\nname = " + json.dumps("x" * 5000) + "\nid = 5\n",
])
def test_the_command_line_says_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert main(["--config", str(path), "say", "turn on the kitchen light"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxhome: error [config-") and "\n" not in err and "Traceback" not in err
    assert len(err) < 300
