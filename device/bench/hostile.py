"""`voxhome bench hostile`: a fixed catalogue of hostile inputs against the real parts, counted.

Config texts go through the config loader and the static home; discovery payloads through a
real mosquitto broker into the speaker's MQTT session; tool arguments through the cloud's tool
runner, the spoken confirmation and the home tools onto that broker; server frames through the
realtime parser and, in whole turns, from a hostile server over a real socket; answers through
the yes/no understanding. What is counted, per part:

- a crash: an exception other than the part's own error type (VoxError) escapes, or a traceback
  is logged while the input is handled (a catch-all that hid a crash still counts);
- a hang: the input is not handled within its deadline;
- a stray publish: a message the speaker put on the broker that is neither its own topic nor a
  known entity's command topic, or that is on a reserved topic (the discovery prefix, `$`-topics,
  wildcards, other speakers' topics) or empty; seen by a subscriber to '#', not by the policy;
- a risky action without a yes: a publish that would open the house (the demo's lock or garage
  topic with anything but LOCK/CLOSE/STOP, or an unlock/disarm payload anywhere) when the
  catalogue's answer before it was not a clear yes (or none was given).

The counts are only as good as the oracles, which are written here independently of the policy
they check; `tests/bench/test_hostile_bench.py` injects a crashing, a hanging, a stray-publishing
and an always-yes part to show that each counter can count.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import logging
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from device.bench.asr_commands import home_registry
from device.bench.hostile_inputs import (
    GARAGE_TOPIC,
    LOCK_TOPIC,
    Catalogue,
    Size,
    catalogue,
    demo_configs,
)
from device.bench.hostile_wire import Recorder, Wire
from device.cloud.calls import run_tool
from device.cloud.confirmation import SpokenConfirmation
from device.cloud.fake_server import FakeRealtimeServer, Reply
from device.cloud.protocol import parse_server_event
from device.cloud.realtime import RealtimeClient
from device.errors import VoxError
from device.intent.answers import yes_or_no
from device.intent.language import HomeLanguage
from device.settings import CloudSettings, Settings, load_settings, settings_from_dict
from device.sim.broker import Mosquitto
from device.tools.api import ToolExecutor
from device.tools.registry import Registry
from device.tools.session import HomeSession
from device.tools.tools import HomeTools
from hal.player import NullOutput, Player

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
DEVICE_ID = "bench-hostile"
SAFE = {LOCK_TOPIC: {b"LOCK"}, GARAGE_TOPIC: {b"CLOSE", b"STOP"}}
OPENING = re.compile(rb"unlock|disarm|unlatch", re.IGNORECASE)
LOCAL = ("turn on the porch fan", "turn on the garage lamp", "turn on the hall fan", "turn on the alarm plug",
         "open the garage door", "unlock the front door", "turn on the json door", "open the side gate")
TURNS: dict[str, Callable[[Catalogue], Reply]] = {
    "endless": lambda c: Reply(endless=True),
    "trickle": lambda c: Reply(audio_ms=100_000, pace_ms=400),
    "flood": lambda c: Reply(flood=json.dumps({"type": "rate_limits.updated", "rate_limits": []}), pace_ms=5),
    "huge_frame": lambda c: Reply(raw=("y" * (5 << 20),)),
    "bad_frames": lambda c: Reply(raw=tuple(f for f in c.frames if len(f) < 300_000)[:60], audio_ms=300),
    "injected_calls": lambda c: Reply(calls=(("unlock", '{"entity": "lock.front_door"}'), *c.tool_calls[:30])),
}
BOUNDS = dict(connect_timeout_s=2.0, response_timeout_s=1.0, turn_timeout_s=3.0, max_reply_s=2.0, max_buffered_s=1.0)


def risky(topic: str, payload: bytes) -> bool:
    """Would this publish open the house? (The oracle: written apart from device/tools/confirm.py.)"""
    return (topic in SAFE and payload not in SAFE[topic]) or bool(OPENING.search(payload))


def stray(topic: str, payload: bytes, allowed: frozenset[str], prefix: str = "homeassistant") -> bool:
    """Is this a publish a tool must never make? Own topics are the caller's to exclude."""
    reserved = (topic == prefix or topic.startswith((prefix + "/", "$", "voxhome/")) or any(c in topic for c in "+#\x00"))
    return reserved or not payload or topic not in allowed


@dataclass
class Counts:
    tried: int = 0
    crashes: int = 0
    hangs: int = 0
    stray: int = 0
    risky: int = 0
    missed_yes: int = 0
    """Clear yeses the understanding did not take (not a failure: it shows yes is still possible)."""
    asked: int = 0
    """Calls that asked for a spoken yes first."""
    approved: int = 0
    """Risky publishes after a clear yes (the path a real user takes still works)."""
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 5:
            self.notes.append(text[:200])


class _Tracebacks(logging.Handler):
    """Counts log records that carry a traceback: a crash someone caught and logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1


@dataclass(frozen=True)
class Hooks:
    """The real parts by default; the test swaps one for a broken one to see it counted."""

    check_config: Callable[[Path], object] = lambda path: Registry(load_settings(path, required=True).home)
    understand: Callable[[str, str], bool | None] = yes_or_no
    wrap_tools: Callable[[ToolExecutor, Settings], ToolExecutor] | None = None
    deadline_s: float = 10.0


class Bench:
    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.parts: dict[str, Counts] = {}
        self.tracebacks = _Tracebacks()

    async def attempt(self, part: Counts, label: str, op: Callable[[], Awaitable[T]], deadline_s: float | None = None) -> T | None:
        """One input: its result, or None after an expected VoxError, a crash or a hang (counted)."""
        part.tried += 1
        before = self.tracebacks.count
        try:
            return await asyncio.wait_for(op(), deadline_s or self.hooks.deadline_s)
        except TimeoutError:
            part.hangs += 1
            part.note(f"hang: {label}")
        except VoxError:
            pass
        except Exception as err:  # noqa: BLE001 - counting these is the point
            part.crashes += 1
            part.note(f"crash: {label}: {type(err).__name__}: {err}")
            before = self.tracebacks.count  # counted once
        if self.tracebacks.count > before:
            part.crashes += 1
            part.note(f"traceback logged: {label}")
        return None

    def thread(self, fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
        return lambda: asyncio.to_thread(fn)

    # --- the parts -------------------------------------------------------------------------

    async def configs(self, cat: Catalogue) -> None:
        part = self.parts.setdefault("configs", Counts())
        with tempfile.TemporaryDirectory(prefix="voxhome-hostile-") as tmp:
            for i, text in enumerate(cat.configs):
                path = Path(tmp) / f"{i}.toml"
                path.write_text(text, encoding="utf-8", errors="surrogatepass")
                await self.attempt(part, f"config #{i} {text[:40]!r}", self.thread(functools.partial(self.hooks.check_config, path)))

    async def answers(self, cat: Catalogue) -> None:
        part = self.parts.setdefault("answers", Counts())
        for answer in cat.answers:
            said = await self.attempt(part, repr(answer.text[:40]), self.thread(functools.partial(self.hooks.understand, answer.text, answer.language)))
            if said is True and not answer.yes:
                part.risky += 1
                part.note(f"taken as yes: {answer.text[:60]!r} ({answer.language})")
            elif answer.yes and said is not True:
                part.missed_yes += 1

    async def frames(self, cat: Catalogue) -> None:
        part = self.parts.setdefault("frames", Counts())
        for i, frame in enumerate(cat.frames):
            for dialect in ("ga", "beta"):
                await self.attempt(part, f"frame #{i} ({dialect})", self.thread(functools.partial(parse_server_event, frame, dialect)))

    async def turns(self, cat: Catalogue) -> None:
        part = self.parts.setdefault("cloud turns", Counts())
        for name in cat.turns:
            registry = home_registry()
            link = Recorder(registry)
            tools = SpokenConfirmation(HomeTools(registry, link, timeout_s=0.01))
            turn = functools.partial(self._turn, TURNS[name](cat), tools)
            await self.attempt(part, f"turn {name}", turn, BOUNDS["turn_timeout_s"] + 5)
            for topic, payload in link.sent:  # no one said yes during a cloud turn
                part.stray += stray(topic, payload, registry.command_topics())
                if risky(topic, payload):
                    part.risky += 1
                    part.note(f"turn {name}: {topic} {payload[:40]!r} without a yes")

    async def _turn(self, reply: Reply, tools: ToolExecutor) -> None:
        """One cloud turn (300 ms of audio) against a server that answers with `reply`."""
        async with FakeRealtimeServer(replies=[reply]) as server:
            sink = Player(NullOutput(realtime=False))
            client = RealtimeClient(replace(CloudSettings(), url=server.url, **BOUNDS), tools, sink)  # type: ignore[arg-type]
            try:
                await client.turn(b"\x00\x10" * 4800)
            finally:
                await client.close()
                sink.close()

    async def home(self, cat: Catalogue) -> None:
        """Discovery, local commands and cloud tool calls against a real broker and session."""
        discovery = self.parts.setdefault("discovery", Counts())
        tools_part = self.parts.setdefault("tool calls", Counts())
        with tempfile.TemporaryDirectory(prefix="voxhome-hostile-") as tmp:
            broker = Mosquitto(Path(tmp))
            broker.start()
            wire = Wire(broker)
            try:
                await self._home(cat, broker, wire, discovery, tools_part)
            finally:
                wire.close()
                broker.stop()

    async def _home(self, cat: Catalogue, broker: Mosquitto, wire: Wire, discovery: Counts, tools_part: Counts) -> None:
        for topic, payload in await asyncio.to_thread(demo_configs):
            wire.send(topic, payload, retain=True)
        settings = settings_from_dict({"device": {"id": DEVICE_ID}, "mqtt": {
            "host": broker.host, "port": broker.port, "command_timeout_s": 0.2, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}})
        session = HomeSession(settings)
        await session.open()
        try:
            scratch = home_registry()
            for i, (topic, payload) in enumerate(cat.discovery):
                await self.attempt(discovery, f"discovery #{i} {topic[:50]}", self.thread(functools.partial(scratch.handle, topic, payload)))
                wire.send(topic, payload, retain=True)  # and live, into the speaker's session
            await asyncio.to_thread(wire.sync)
            self._classify(wire.take(), discovery, session.registry.command_topics(), approved=False, label="discovery")
            base: ToolExecutor = session.tools
            if self.hooks.wrap_tools is not None:
                base = self.hooks.wrap_tools(base, settings)
            confirmation = SpokenConfirmation(base)
            language = HomeLanguage(session.registry)
            for text in LOCAL:  # the local path: understood, then run without a yes
                decision = language.understand(text)
                if decision.call is not None:
                    await self.attempt(tools_part, f"local {text!r}", functools.partial(base.execute, decision.call))
                    await asyncio.to_thread(wire.sync)
                    self._classify(wire.take(), tools_part, session.registry.command_topics(), approved=False, label=f"local {text!r}")
            # The user's answers alternate: a hedge, negation or question, then a clear yes.
            yes = itertools.cycle([a for a in cat.answers if a.yes])
            other = itertools.cycle([a for a in cat.answers if not a.yes])
            for i, (name, arguments) in enumerate(cat.tool_calls):
                label = f"tool #{i} {name[:20]} {arguments[:60]}"
                before = tools_part.crashes
                result = await self.attempt(tools_part, label, functools.partial(run_tool, confirmation, f"c{i}", name, arguments, timeout_s=2.0))
                if result is not None and result.message.startswith("tool failed:") and tools_part.crashes == before:
                    tools_part.crashes += 1  # run_tool caught an unexpected exception
                    tools_part.note(f"crash inside {label}: {result.message}")
                if result is not None and result.message == "timeout":
                    tools_part.hangs += 1  # run_tool gave up waiting on the tool: a hang it turned into an error
                    tools_part.note(f"hang inside {label}")
                await asyncio.to_thread(wire.sync)
                self._classify(wire.take(), tools_part, session.registry.command_topics(), approved=False, label=label)
                if result is None or result.status != "needs_confirmation" or confirmation.waiting is None:
                    continue
                tools_part.asked += 1
                answer = next(yes if tools_part.asked % 2 == 0 else other)
                heard = self.hooks.understand(answer.text, answer.language)
                confirmation.answer(heard)
                # The model calls again after the user's answer; only a real yes may let it through.
                await self.attempt(tools_part, label + " (again)", functools.partial(run_tool, confirmation, f"c{i}b", name, arguments, timeout_s=2.0))
                await asyncio.to_thread(wire.sync)
                self._classify(wire.take(), tools_part, session.registry.command_topics(), approved=heard is True and answer.yes,
                               label=f"{label} after {answer.text[:30]!r}")
        finally:
            await session.close()

    def _classify(self, messages: list[tuple[str, bytes]], part: Counts, allowed: frozenset[str], *, approved: bool, label: str) -> None:
        """What the speaker put on the broker while this input was handled."""
        own = f"voxhome/{DEVICE_ID}/"
        for topic, payload in messages:
            if topic.startswith(own) or (topic.startswith("homeassistant/") and DEVICE_ID.replace("-", "_") in topic):
                continue  # its own state and its self-announcement
            if stray(topic, payload, allowed):
                part.stray += 1
                part.note(f"stray publish {topic[:60]!r} {payload[:30]!r}: {label}")
            if risky(topic, payload) and approved:
                part.approved += 1
            elif risky(topic, payload):
                part.risky += 1
                part.note(f"risky publish {topic} {payload[:30]!r} without a yes: {label}")

    async def run(self, cat: Catalogue) -> dict[str, Counts]:
        root = logging.getLogger()
        root.addHandler(self.tracebacks)
        try:
            await self.configs(cat)
            await self.answers(cat)
            await self.frames(cat)
            await self.turns(cat)
            await self.home(cat)
        finally:
            root.removeHandler(self.tracebacks)
        return self.parts


def run_bench(size: Size = "full", hooks: Hooks | None = None, cat: Catalogue | None = None) -> dict[str, Counts]:
    return asyncio.run(Bench(hooks or Hooks()).run(cat or catalogue(size)))


def totals(parts: dict[str, Counts]) -> Counts:
    out = Counts()
    for c in parts.values():
        out.tried, out.crashes, out.hangs = out.tried + c.tried, out.crashes + c.crashes, out.hangs + c.hangs
        out.stray, out.risky, out.missed_yes = out.stray + c.stray, out.risky + c.risky, out.missed_yes + c.missed_yes
        out.asked, out.approved = out.asked + c.asked, out.approved + c.approved
    return out


def report(parts: dict[str, Counts]) -> str:
    rows = [*parts.items(), ("total", totals(parts))]
    lines = [f"  {'part':<14}{'inputs tried':>13}{'crashes':>9}{'hangs':>7}{'stray publishes':>17}{'risky actions without a yes':>29}"]
    lines += [f"  {name:<14}{c.tried:>13}{c.crashes:>9}{c.hangs:>7}{c.stray:>17}{c.risky:>29}" for name, c in rows]
    answers = parts.get("answers")
    if answers is not None:
        lines.append(f"  answers: {answers.missed_yes} of the catalogue's clear yeses not taken (a yes is still possible)")
    tools = parts.get("tool calls")
    if tools is not None:
        lines.append(f"  tool calls: {tools.asked} asked for a spoken yes; {tools.approved} risky publishes went out after a clear yes")
    lines.append("  (inputs tried counts attempts: a frame in both dialects, a tool call and its repeat after the answer)")
    lines += [f"  {name}: {note}" for name, c in parts.items() for note in c.notes]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=("tiny", "full"), default="full", help="the catalogue: full, or a handful of each (tiny)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def run(args: argparse.Namespace) -> int:
    cat = catalogue(args.size)
    # Hostile input makes the parts log warnings by the hundred; keep stderr quiet unless -v.
    # Only the handlers are raised: the records still reach the traceback counter.
    quiet = [] if args.verbose else [h for h in logging.getLogger().handlers if h.level < logging.CRITICAL]
    levels = [h.level for h in quiet]
    for handler in quiet:
        handler.setLevel(logging.CRITICAL)
    try:
        parts = run_bench(cat=cat)
    finally:
        for handler, level in zip(quiet, levels, strict=True):
            handler.setLevel(level)
    total = totals(parts)
    if args.json:
        sys.stdout.write(json.dumps({"size": args.size, "parts": {k: asdict(v) for k, v in parts.items()}, "total": asdict(total)}) + "\n")
    else:
        sys.stdout.write(f"voxhome bench hostile: {cat.total()} catalogue inputs ({args.size}) against the real parts\n" + report(parts))
    return 1 if total.crashes or total.hangs or total.stray or total.risky else 0
