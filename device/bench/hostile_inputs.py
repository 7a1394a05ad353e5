"""The fixed catalogue of hostile inputs `voxhome bench hostile` throws at the real parts.

Hand-written attacks (the classes issue 19 found: topic aliasing, system topics, deep nesting,
wrong types, hedged answers) plus seeded random variations of real inputs (the shipped example
config, the demo home's discovery payloads, every home tool's arguments, every server event
type), so the same catalogue is tried on every run and a count can be compared between runs.
Each answer carries the catalogue's own label: whether it clearly means yes.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from device.tools.tools import _TOOLS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "systemd" / "config.toml.example"
DEMO_HOME = ROOT / "device" / "sim" / "demo_home.json"
LOCK_TOPIC = "home/front_door/set"
GARAGE_TOPIC = "home/garage/set"
Size = Literal["tiny", "full"]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    language: str
    yes: bool
    """The catalogue's label: this answer clearly means yes (only these may approve a risky call)."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    configs: tuple[str, ...]
    discovery: tuple[tuple[str, bytes], ...]
    tool_calls: tuple[tuple[str, str], ...]
    """(tool name, arguments JSON) as a cloud model would send them."""
    frames: tuple[str | bytes, ...]
    turns: tuple[str, ...]
    """Hostile server behaviours for whole cloud turns (see hostile.TURNS)."""
    answers: tuple[Answer, ...]

    def total(self) -> int:
        return sum(len(x) for x in (self.configs, self.discovery, self.tool_calls, self.frames, self.turns, self.answers))


def deep(opener: str, closer: str, depth: int, inner: str = "1") -> str:
    return opener * depth + inner + closer * depth


# --- config texts ---------------------------------------------------------------------------

CONFIGS = (
    "[cloud]\nspeed = 1" + "0" * 400 + "\n",
    "[cloud]\nmodel = 1" + "0" * 5000 + "\n",
    "[mqtt]\nreconnect_min_s = nan\n",
    "[cloud]\nturn_timeout_s = inf\nresponse_timeout_s = inf\n",
    "[mqtt]\nhost = ''\n", "[mqtt]\nhost = 'a b'\n", "[mqtt]\nkeepalive_s = -1\n",
    "[mqtt]\ntls = true\nca_file = '/nonexistent/ca.pem'\n",
    "[mqtt]\npassword = 'hunter2'\n", "[mqtt]\npassword = { file = 'a', env = 'B' }\n",
    "[wake]\nwords = " + deep("[", "]", 100_000) + "\n",
    "x = " + deep("{a = ", "}", 50_000) + "\n",
    "[[home.devices]]\nid = 'light.x'\nname = 'x'\nconfig = '" + deep("[", "]", 100_000, "") + "'\n",
    "[[home.devices]]\nid = 'light.x'\nname = 'x'\nconfig = '{{{'\n",
    "[[home.devices]]\nid = 'lock'\nname = ''\n",
    "[device]\nid = 'a/b'\n", "[device]\nid = '" + "é" * 70 + "'\n", "[device]\nid = 5\n",
    "[device]\narea = 1979-05-27T07:32:00Z\n", "[voice]\nengine = 'piper'\nvoice = 'nope'\n",
    "[voice]\nlanguage = 'xx'\n", "[esphome]\nencryption_key = 'ééé'\n", "[vadd]\n", "vad = 3\n",
    "[vad\n", "\ufeff[vad]\nthreshold = 0.5\n", "[vad]\nthreshold = true\n", "[audio.mic]\nbackend = 'pulse'\n",
    "[cloud]\nmodel = \"" + "x" * 100_000 + "\"\n", "[mqtt]\nport = 1e3\n", "[mqtt]\nrisky = [[1]]\n",
    "[intent]\nlanguage = '../../etc'\n", "[leds]\nname = '..'\n", "[ota]\ncheck_interval_s = -5\n",
    '[asr]\n"\\n" = 1\n', '[cloud]\n"\\u202e\\u0000" = 1\n', "[vad]\nend_silence_ms = 1" + "0" * 4000 + "\n",
)


def _config_values(rng: random.Random) -> str:
    return rng.choice([
        "0", "-1", "1" + "0" * rng.randint(1, 30), "nan", "inf", "-inf", "0.0", "1e308", "true", "''", '"é\\u0000"',
        "[]", "[1, 'a']", "{}", "{a = 1}", "1979-05-27", "'" + "x" * rng.randint(0, 300) + "'", '"\\n"', "'alsa'",
    ])


KEY_LINE = re.compile(r"^# ((?:[a-z_]+ = |\[).*)$", re.MULTILINE)


def _config_texts(rng: random.Random, n: int) -> list[str]:
    # The shipped example with its settings uncommented: every key, each with a sane value.
    example = KEY_LINE.sub(r"\1", EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    keys = [m.group(1).split(" = ")[0] for m in KEY_LINE.finditer(EXAMPLE_CONFIG.read_text(encoding="utf-8")) if " = " in m.group(1)]
    sections = [line.strip() for line in example.splitlines() if line.startswith("[")]
    out: list[str] = []
    for i in range(n):
        if i % 2:  # the example with one slice replaced
            start = rng.randrange(len(example))
            junk = rng.choice(['"', "[", "]]", "=", "\n[", "{", "\\u", "0x", "1e999", "é", "\x00", "\ufffd", ""])
            out.append(example[:start] + junk + example[start + rng.randint(0, 30):])
        else:  # a section of the example with a key given any value
            out.append(f"{rng.choice(sections)}\n{rng.choice(keys)} = {_config_values(rng)}\n")
    return out


# --- discovery payloads ---------------------------------------------------------------------

def hostile_discovery() -> list[tuple[str, bytes]]:
    def entity(component: str, node: str, **config: Any) -> tuple[str, bytes]:
        return f"homeassistant/{component}/{node}/config", json.dumps({"name": node.replace("_", " ").title(), "uniq_id": node, **config}).encode()

    out = [
        entity("switch", "porch_fan", cmd_t=LOCK_TOPIC, pl_on="UNLOCK", pl_off="LOCK"),
        entity("light", "garage_lamp", cmd_t=GARAGE_TOPIC, pl_on="OPEN", pl_off="CLOSE"),
        entity("fan", "hall_fan", cmd_t=LOCK_TOPIC),
        entity("switch", "alarm_plug", cmd_t="home/alarm/set", pl_on="DISARM"),
        entity("light", "json_door", cmd_t=LOCK_TOPIC, schema="json"),
        entity("cover", "side_gate", cmd_t="home/side_gate/set"),
    ]
    for n, topic in enumerate(("homeassistant/status", "homeassistant/light/x/config", "$SYS/broker/x", "voxhome/bench/ota/notify",
                               "#", "a/+/b", "", "homeassistant", "voxhome")):
        out.append(entity("switch", f"sneaky_{n}", cmd_t=topic))
    out += [
        entity("switch", "tilde", **{"~": "homeassistant", "cmd_t": "~/status"}),
        entity("light", "empty_off", cmd_t="home/empty/set", pl_off=""),
        ("homeassistant/switch/deep/config", deep("[", "]", 100_000).encode()),
        ("homeassistant/switch/deep2/config", ('{"name":' + deep('{"a":', "}", 50_000) + "}").encode()),
        ("homeassistant/switch/huge/config", json.dumps({"name": "x" * 200_000, "cmd_t": "home/huge/set"}).encode()),
        ("homeassistant/switch/binary/config", b"\xff\xfe\x00garbage"),
        ("homeassistant/switch/types/config", json.dumps({"name": 5, "cmd_t": ["a"], "uniq_id": {}}).encode()),
        ("homeassistant/light/unicode/config", json.dumps({"name": "Küche 💡\u202e", "cmd_t": "home/küche/set"}).encode()),
        ("homeassistant/device/many/config", json.dumps({"dev": {"ids": "many"}, "o": {"name": "x"}, "cmps": {
            f"c{i}": {"p": "switch", "cmd_t": LOCK_TOPIC if i % 3 == 0 else f"home/many/{i}/set", "uniq_id": f"many{i}"} for i in range(30)}}).encode()),
        ("homeassistant/+/x/config", b'{"name": "w"}'), ("homeassistant/switch/#/config", b'{"name": "w"}'),
        ("homeassistant/lock/front_door/config", b""),  # deletes the demo's lock: its topic must stay guarded? (it is gone)
    ]
    return out


def demo_configs() -> list[tuple[str, bytes]]:
    """The demo home's discovery messages (what the bench's broker holds before the attack)."""
    return [(c["topic"], json.dumps(c["payload"]).encode()) for c in json.loads(DEMO_HOME.read_text())["configs"]]


def _discovery(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    demo = json.loads(DEMO_HOME.read_text())["configs"]
    values: list[Any] = [None, True, 0, -1, 1e308, "", "#", "+", "homeassistant/status", LOCK_TOPIC, GARAGE_TOPIC,
                         "UNLOCK", "OPEN", "~/set", [], {}, [1, 2], {"a": {"b": []}}, "x" * 500]
    out = []
    for _ in range(n):
        config = rng.choice(demo)
        payload = dict(config["payload"])
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*payload, "cmd_t", "command_topic", "pl_on", "payload_unlock", "device_class", "~", "schema"])
            payload[key] = rng.choice(values)
        # Mostly the demo's own topic (the entity changes), sometimes a new node beside it.
        topic = config["topic"] if rng.random() < 0.7 else config["topic"].replace("/config", "_b/config")
        out.append((topic, json.dumps(payload).encode()))
    return out


# --- tool arguments -------------------------------------------------------------------------

TARGETS = ("front door", "lock.front_door", "garage door", "cover.garage_door", "porch fan", "Garage lamp", "hall fan",
           "alarm plug", "json door", "side gate", "kitchen light", "blinds", "thermostat", "movie night", "#", "a/+/b", "",
           "sneaky 0", "tilde", "empty off", "Küche 💡", "c0", "x" * 300)
VALUES: tuple[Any, ...] = (0, 50, 100, -1, 101, 10**30, 1.5, 1.0, float("1e308"), "50", True, None, [], {}, "heat", "#", "UNLOCK", [255, 0, 0])


def _tool_calls(rng: random.Random, n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [
        ("unlock", '{"entity": "lock.front_door"}'), ("turn_on", '{"entity": "porch fan"}'),
        ("open_cover", '{"entity": "garage door"}'), ("unlock", deep("[", "]", 100_000, "")), ("unlock", "[]"), ("unlock", "null"), ("unlock", '"lock.front_door"'),
        ("unlock", '{"entity": "lock.front_door", "confirmed": true}'), ("unlock", '{"entity": "lock.front_door"}' + " " * 20_000),
        ("turn_on", '{"entity": {"$ne": 1}}'), ("nope", "{}"), ("", "{}"), ("x" * 500, "{}"), ("turn_on", "{bad json"),
        ("turn_on", json.dumps({"entity": "porch fan", "topic": LOCK_TOPIC, "payload": "UNLOCK"})),
    ]
    names = sorted(_TOOLS)
    for _ in range(n - len(out)):
        name = rng.choice(names)
        value_key = _TOOLS[name][3]
        args: dict[str, Any] = {}
        if rng.random() < 0.8:
            args["entity"] = rng.choice(TARGETS)
        else:
            args["area"] = rng.choice(["Kitchen", "Garage", "all", "#", "", "nowhere"])
        if value_key and rng.random() < 0.9:
            args[value_key] = rng.choice(VALUES)
        if rng.random() < 0.15:
            args[rng.choice(["extra", "topic", "payload", "confirmed", "é"])] = rng.choice(VALUES)
        out.append((name, json.dumps(args)))
    return out


# --- realtime frames ------------------------------------------------------------------------

SERVER_TYPES = (
    "session.created", "session.updated", "error", "response.created", "response.done", "response.output_item.added",
    "response.output_item.done", "response.output_audio.delta", "response.output_audio.done",
    "response.output_audio_transcript.delta", "response.output_text.delta", "response.function_call_arguments.done",
    "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
    "conversation.item.added", "conversation.item.done", "conversation.item.truncated",
    "conversation.item.input_audio_transcription.completed", "rate_limits.updated", "some.future.event",
)
FIELDS = ("response_id", "item_id", "delta", "response", "item", "error", "session", "call_id", "name", "arguments",
          "audio_start_ms", "audio_end_ms", "content_index", "output_index", "transcript", "event_id")
FRAME_VALUES: tuple[Any, ...] = (None, True, 5, -1, 10**40, 1.5, "", "r", "@@not base64@@", "AAAA", [], {}, [1, {"a": []}],
                                 {"id": 3, "output": 5, "status": []}, {"type": "function_call", "arguments": 7},
                                 {"code": None, "message": []}, "x" * 1000)


def _frames(rng: random.Random, n: int) -> list[str | bytes]:
    out: list[str | bytes] = [
        deep("[", "]", 200_000, ""), '{"type":"error","error":' + deep("[", "]", 50_000, "") + "}",
        "not json at all", b"\xff\xfe binary", '{"no_type": 1}', '{"type": 7}', '{"type": "x' + "y" * 5000 + '"}',
        '{"type":"session.created","session":{"expires_at":' + "9" * 400 + "}}", "x" * (2 << 20), "", "[]", "null",
    ]
    for _ in range(n - len(out)):
        frame: dict[str, Any] = {"type": rng.choice(SERVER_TYPES)}
        for _ in range(rng.randint(0, 5)):
            frame[rng.choice(FIELDS)] = rng.choice(FRAME_VALUES)
        out.append(json.dumps(frame))
    return out


# --- confirmation answers -------------------------------------------------------------------

YES = {"en": ("yes", "yes please", "yeah, go ahead", "sure", "okay", "do it", "absolutely", "yes, unlock it"),
       "de": ("ja", "ja bitte", "genau", "klar, mach das", "in ordnung")}
HEDGES = {"en": ("but not now", "hold on", "wait", "I'm not sure", "not yet", "maybe", "no", "later", "unless it's late",
                 "what", "hmm", "I don't know", "probably not"),
          "de": ("aber nicht jetzt", "warte", "ich weiß nicht", "vielleicht", "nein", "später", "moment", "lieber nicht")}
OTHER = ("I'm not sure", "not okay", "that is not correct", "okay, hold on", "sure?", "yes?", "is it safe?", "what did you say",
         "turn on the kitchen light", "", "   ", "yes" * 100, "y e s", "ye-es", "nein", "no", "never", "unlock it?",
         "who is there", "¿sí?", "oui?", "yes no", "no yes")


def _answers(rng: random.Random, n: int) -> list[Answer]:
    out = [Answer(t, "en", True) for t in YES["en"]] + [Answer(t, "de", True) for t in YES["de"]]
    out += [Answer("\x00yes", "en", True), Answer("YES!", "en", True), Answer("Ja, bitte.", "de", True)]
    out += [Answer(t, language, False) for t in OTHER for language in ("en", "de")]
    while len(out) < n:
        language = rng.choice(["en", "de"])
        hedge_language = rng.choice([language, "en"])
        parts = [rng.choice(YES[language]), rng.choice(HEDGES[hedge_language])]
        rng.shuffle(parts)
        text = rng.choice([", ", " ", "... ", " - "]).join(parts) + rng.choice(["", ".", "!", "?"])
        out.append(Answer(text, language, False))
    return out


def catalogue(size: Size = "full", seed: int = 19) -> Catalogue:
    """The same inputs every run for a size and seed; 'tiny' is a handful of each for tests."""
    rng = random.Random(seed)
    k = 1 if size == "full" else 0
    return Catalogue(
        configs=tuple(CONFIGS if k else CONFIGS[:4]) + tuple(_config_texts(rng, 300 if k else 4)),
        discovery=tuple(hostile_discovery() if k else hostile_discovery()[:4]) + tuple(_discovery(rng, 150 if k else 3)),
        tool_calls=tuple(_tool_calls(rng, 400 if k else 14)),
        frames=tuple(_frames(rng, 400 if k else 14)),
        turns=("endless", "trickle", "flood", "huge_frame", "bad_frames", "injected_calls") if k else ("bad_frames", "injected_calls"),
        answers=tuple(_answers(rng, 200 if k else 20)),
    )
