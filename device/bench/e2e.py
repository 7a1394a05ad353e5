"""`voxhome bench e2e`: the whole spoken path, scored on the project's own evaluation set.

"<wake word>, <command>" rendered by many synthetic voices under acoustic conditions
(`conditions.py`) → `voxhome run --audio FILE` as a subprocess, against a real mosquitto
(`sim/broker.py`), `voxhome sim home` with the 54-device evaluation home and the fake cloud
(`voxhome sim cloud`, no tool call, so a cloud turn publishes nothing). Every publish on a command
topic is recorded and attributed to the turn whose wake word preceded it; each case is scored
right / miss / WRONG PUBLISH (`e2e_score.py`). In the same run the peer, Home Assistant's stock path
(`e2e_peer.py`), hears the same audio cut at the wake word's end.

The default (held-out part, 36 cases stratified by kind × 7 conditions, voices rotated over the 8
held-out voices: 252 utterances) takes about 15-20 minutes on a 2-core board; `--full` prints the
whole-set command. `--text` sends the same cases through `voxhome say` instead of audio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from device.bench.conditions import (
    CONDITIONS,
    SAMPLE_RATE,
    concat,
    condition,
    render,
    silence,
    write_pcm16,
)
from device.bench.e2e_cases import HOME_FILE, Case, load_cases
from device.bench.e2e_fresh import load_fresh
from device.bench.e2e_home import build_home
from device.bench.e2e_score import HEADER, Observed, Report, score
from device.bench.voices import HELD_OUT_VOICES, TUNING_VOICES, Voice, available, voice_by_label

WAKE_PHRASE = "okay nabu"
"""The default config's wake word (settings: okay_nabu)."""
GAP_S = 6.5
"""Silence after each turn: longer than the follow-up window, so turns never run into each other."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--part", choices=("held_out", "tuning", "all", "fresh"), default="held_out",
                        help="which sentences and voices (held-out: never tuned on; fresh: the hand-written "
                             "blind set e2e_fresh.json, held-out voices)")
    parser.add_argument("--cases", type=int, default=36, help="cases, stratified by kind (0 = every case of the part)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma list of {', '.join(CONDITIONS)}")
    parser.add_argument("--voices", default="", help="comma list of voice labels (default: the part's voices, rotated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text", action="store_true", help="the text path (voxhome say) instead of audio")
    parser.add_argument("--no-peer", action="store_true", help="skip the Home Assistant peer")
    parser.add_argument("--full", action="store_true", help="print the command for the whole set and exit")
    parser.add_argument("--show-wrong", type=int, default=20, help="list up to N wrong publishes")
    parser.add_argument("--show-misses", action="store_true", help="print every missed case with what was heard")


def select_cases(cases: list[Case], part: str, n: int, seed: int) -> list[Case]:
    pool = [c for c in cases if part == "all" or c.held_out == (part in ("held_out", "fresh"))]
    if n <= 0 or n >= len(pool):
        return pool
    rng = np.random.default_rng(seed)
    by_kind: dict[str, list[Case]] = defaultdict(list)
    for c in pool:
        by_kind[c.kind].append(c)
    for items in by_kind.values():
        rng.shuffle(items)
    out: list[Case] = []
    while len(out) < n:  # round-robin over kinds, so every kind is in even a small run
        for kind in sorted(by_kind):
            if by_kind[kind] and len(out) < n:
                out.append(by_kind[kind].pop())
    return out


def part_voices(part: str, labels: str) -> list[Voice]:
    if labels:
        return [voice_by_label(v.strip()) for v in labels.split(",") if v.strip()]
    voices = {"held_out": HELD_OUT_VOICES, "fresh": HELD_OUT_VOICES, "tuning": TUNING_VOICES}.get(part, TUNING_VOICES + HELD_OUT_VOICES)
    return [v for v in voices if available(v)]


# -- the live rig ----------------------------------------------------------------------------


class Rig:
    """mosquitto + `voxhome sim home` + `voxhome sim cloud` + a recorder of command publishes."""

    def __init__(self, workdir: Path, config: str | None = None) -> None:
        from device.sim.broker import Mosquitto

        self.workdir = workdir
        self.config = config
        """The --config given to `voxhome bench e2e`, passed on to `voxhome run` (e.g. [asr] model)."""
        self.broker = Mosquitto(workdir)
        self._runs = 0
        self.procs: list[subprocess.Popen[str]] = []
        self.cloud_url = ""
        self.published: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self.command_topics = {t for d in build_home() for k, t in d.topics.items() if k not in ("state", "bri_state", "rgb_state", "position_state", "mode_state", "temp_state", "current", "pct_state", "preset_state")}

    def __enter__(self) -> Rig:
        self.broker.start()
        home = self._spawn(["sim", "home", "--discovery", str(HOME_FILE), "--mqtt", self.broker.url], "sim_ready")
        del home
        cloud = self._spawn(["sim", "cloud", "--port", "0", "--tool", "", "--say", "Here is what I found."], "listening")
        self.cloud_url = cloud["url"]
        self._start_recorder()
        return self

    def _spawn(self, argv: list[str], ready: str) -> dict[str, Any]:
        proc = subprocess.Popen([sys.executable, "-m", "device", *argv], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("type") == ready:
                return dict(event)
        raise RuntimeError(f"voxhome {' '.join(argv[:2])} did not start")

    def _start_recorder(self) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-e2e-recorder-{os.getpid()}")
        ready = threading.Event()

        def on_connect(c: paho.Client, *_: Any) -> None:
            c.subscribe("#", qos=1)
            ready.set()

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            if msg.retain or msg.topic not in self.command_topics:
                return
            with self._lock:
                self.published.append((time.monotonic(), msg.topic, bytes(msg.payload).decode("utf-8", "replace")))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        ready.wait(10)
        self._client = client

    def __exit__(self, *_: object) -> None:
        self._client.loop_stop()
        self._client.disconnect()
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.broker.stop()

    def env(self) -> dict[str, str]:
        # The fake cloud checks no key, but the client never connects without one.
        return {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "bench-not-a-secret")}

    def _run_config(self) -> Path:
        """The --config for one `voxhome run`: the given one (if any) with a fresh state dir, so no
        timer from an earlier batch (or from the machine's own /var/lib/voxhome) rings into this one."""
        self._runs += 1
        state = self.workdir / f"state-{self._runs}"
        text = Path(self.config).read_text(encoding="utf-8") if self.config else ""
        line = f"state_dir = {json.dumps(str(state))}"
        device = tomllib.loads(text).get("device")
        if device is None:
            text = f"[device]\n{line}\n{text}"
        elif "state_dir" not in device:  # else the caller chose one
            text = re.sub(r"^\[device\][ \t]*$", lambda m: f"{m.group(0)}\n{line}", text, count=1, flags=re.M)
        if "state_dir" not in tomllib.loads(text).get("device", {}):
            # A [device] table spelled some other way: say so rather than share the machine's state.
            raise SystemExit(f"voxhome bench e2e: {self.config}: add a state_dir to its [device] table")
        path = self.workdir / f"config-{self._runs}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def run_audio(self, wav: Path, spans: list[tuple[float, float]]) -> list[Observed]:
        """One `voxhome run --audio` over a file of turns → what happened in each span."""
        start = len(self.published)
        argv = [sys.executable, "-m", "device", "--config", str(self._run_config()),
                "run", "--audio", str(wav), "--mqtt", self.broker.url,
                "--cloud-url", self.cloud_url, "--speaker-wav", str(self.workdir / "speaker.wav")]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env())
        assert proc.stdout is not None
        timeline: list[tuple[float, dict[str, Any]]] = []
        for line in proc.stdout:
            try:
                timeline.append((time.monotonic(), json.loads(line)))
            except ValueError:
                continue
        proc.wait()
        time.sleep(0.5)  # the last publishes reach the recorder
        with self._lock:
            published = self.published[start:]
        return attribute(timeline, published, spans)

    def run_texts(self, texts: list[str]) -> list[Observed]:
        """The text path in one process: the same understanding and home tools `voxhome say`
        uses, over one broker connection (a subprocess per sentence costs seconds each)."""
        return asyncio.run(self._texts(texts))

    async def _texts(self, texts: list[str]) -> list[Observed]:
        from device.appliance import build_language
        from device.settings import settings_from_dict
        from device.tools.session import HomeSession

        settings = settings_from_dict({"device": {"id": f"bench-text-{os.getpid()}"},
                                       "mqtt": {"host": self.broker.host, "port": self.broker.port}})
        out = []
        async with HomeSession(settings) as home:
            language = build_language(settings, home.registry)
            for text in texts:
                start = len(self.published)
                decision = language.understand(text)
                route = "cloud" if decision.kind == "not_local" else "local"
                if decision.call is not None:
                    await home.tools.execute(decision.call, confirmed=False)
                await asyncio.sleep(0.15)  # the publishes reach the recorder
                with self._lock:
                    pubs = tuple((t, p) for _w, t, p in self.published[start:])
                out.append(Observed(pubs, route, True, text))
        return out

    def run_text(self, text: str) -> Observed:
        start = len(self.published)
        argv = [sys.executable, "-m", "device", "say", "--quiet", "--mqtt", self.broker.url, text]
        out = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=120)
        time.sleep(0.3)
        route = None
        for line in out.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("kind")
            if kind in ("tool", "reject", "answer", "local", "timer", "speaker"):
                route = "local"
            elif kind == "not_local":
                route = "cloud"
        with self._lock:
            pubs = tuple((t, p) for _w, t, p in self.published[start:])
        return Observed(pubs, route, True, text)


def attribute(timeline: list[tuple[float, dict[str, Any]]], published: list[tuple[float, str, str]],
              spans: list[tuple[float, float]]) -> list[Observed]:
    """Give each event and publish to the turn whose wake (by audio time) came last before it."""
    turn_at: list[tuple[float, int]] = []  # (wall time of the wake line, turn index)
    routes: dict[int, str] = {}
    texts: dict[int, str] = {}
    current = -1
    for wall, event in timeline:
        if event.get("type") == "wake":
            t = float(event.get("timestamp_ms", 0)) / 1000.0
            current = next((i for i, (a, b) in enumerate(spans) if a <= t <= b), -1)
            turn_at.append((wall, current))
        elif current >= 0 and event.get("type") == "route":
            routes.setdefault(current, str(event.get("way")))
        elif current >= 0 and event.get("type") == "transcript":
            heard = str(event.get("text", ""))
            if event.get("command"):
                # What the home's grammar heard too, and how well the audio supports it (exp(-gap)).
                heard += f" | grammar: {event['command']} ({event.get('command_confidence')})"
            texts.setdefault(current, heard)
    pubs: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for wall, topic, payload in published:
        owner = -1
        for at, index in turn_at:
            if at <= wall:
                owner = index
        pubs[owner].append((topic, payload))
    woke = {i for _w, i in turn_at}
    out = [Observed(tuple(pubs.get(i, [])), routes.get(i), i in woke, texts.get(i, "")) for i in range(len(spans))]
    if pubs.get(-1):  # a publish before any wake word, or from a wake outside every turn
        out.append(Observed(tuple(pubs[-1]), None, False))
    return out


# -- the run ---------------------------------------------------------------------------------


def _render_batch(cases: list[Case], voices: list[Voice], cond_name: str, offset: int, seed: int,
                  out: Path) -> tuple[list[tuple[float, float]], list[tuple[Case, Voice, np.ndarray]]]:

    cond = condition(cond_name)
    parts, spans, peer_audio = [], [], []
    t = 0.0
    for i, case in enumerate(cases):
        voice = voices[(i + offset) % len(voices)]
        utt = render(case.text, voice, cond, seed=seed + i, wake=WAKE_PHRASE)
        audio = utt.audio.astype(np.float32) / 32768.0
        parts += [audio, silence(GAP_S)]
        spans.append((t, t + len(audio) / SAMPLE_RATE + GAP_S * 0.9))
        cut = int(max(0.0, utt.wake_end + 0.05) * SAMPLE_RATE)
        peer_audio.append((case, voice, utt.audio[cut:]))
        t += len(audio) / SAMPLE_RATE + GAP_S
    write_pcm16(out, (np.clip(concat(*parts), -1, 1) * 32767).astype("<i2"))
    return spans, peer_audio


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _print_report(name: str, report: Report, parts: list[str], show_wrong: int) -> None:
    _out(f"## {name}")
    for part in parts:
        _out(f"by condition ({part})   {HEADER}")
        for (p, cond), tally in sorted(report.by_condition.items()):
            if p == part:
                _out(f"  {cond:22s} {tally.cells()}")
        _out(f"by kind ({part})        {HEADER}")
        for (p, kind), tally in sorted(report.by_kind.items()):
            if p == part:
                _out(f"  {kind:22s} {tally.cells()}")
    _out(f"wrong publishes: {len(report.wrong)}")
    for line in report.wrong[:show_wrong]:
        _out(f"  WRONG {line}")
    _out()


def run(args: argparse.Namespace) -> int:
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    for c in conditions:
        condition(c)
    if args.full:
        _out(f"{sys.argv[0]} bench e2e --part all --cases 0 --conditions {','.join(CONDITIONS)}")
        return 0
    cases = select_cases(load_fresh() if args.part == "fresh" else load_cases(), args.part, args.cases, args.seed)
    voices = part_voices(args.part, args.voices)
    if not voices:
        sys.stderr.write("no voice of this part is installed (espeak-ng, flite, festival, hibari, piper)\n")
        return 2
    part_name = args.part
    ours, peer_report = Report(), Report()
    started = time.monotonic()
    _out(f"{len(cases)} cases × {len(conditions)} conditions, voices {', '.join(v.label for v in voices)}")
    with tempfile.TemporaryDirectory(prefix="voxhome-e2e-") as tmp, Rig(Path(tmp), getattr(args, "config", None)) as rig:
        if args.text:
            for case, seen in zip(cases, rig.run_texts([c.text for c in cases]), strict=True):
                verdict = score(case, seen)
                ours.add(part_name, "text", case, verdict)
                if args.show_misses and verdict.result != "right":
                    _out(f"  {verdict.result.upper()} text {case.id} {case.text!r}: route {seen.route}; {verdict.detail}")
            _print_report("voxhome (text)", ours, [part_name], args.show_wrong)
            return 0
        peer = None
        if not args.no_peer:
            from device.bench.e2e_peer import HassPeer, WhisperPeer

            peer = (WhisperPeer(), HassPeer(build_home()))
        for k, cond_name in enumerate(conditions):
            wav = Path(tmp) / f"{cond_name}.wav"
            spans, peer_audio = _render_batch(cases, voices, cond_name, k, args.seed, wav)
            observed = rig.run_audio(wav, spans)
            for i, case in enumerate(cases):
                verdict = score(case, observed[i])
                ours.add(part_name, cond_name, case, verdict, peer_audio[i][1].label)
                if args.show_misses and verdict.result != "right":
                    woke = "" if observed[i].woke else " (never woke)"
                    _out(f"  {verdict.result.upper()}{woke} {cond_name}/{peer_audio[i][1].label} {case.id} {case.text!r}: heard "
                         f"{observed[i].transcript!r}, route {observed[i].route}; {verdict.detail}")
            for extra in observed[len(cases):]:
                ours.wrong.append(f"{part_name}/{cond_name} outside any turn: {extra.publishes}")
            if peer is not None:
                from device.bench.e2e_peer import concrete, normalize

                whisper, hass = peer
                for case, voice, audio in peer_audio:
                    text = normalize(whisper.transcribe(audio))
                    route, pubs = hass.understand(text)
                    peer_report.add(part_name, cond_name, case, score(case, Observed(concrete(pubs), route, True, text)), voice.label)
    _out(f"({time.monotonic() - started:.0f} s)")
    _print_report("voxhome (voxhome run --audio)", ours, [part_name], args.show_wrong)
    if not args.no_peer:
        _print_report("peer (faster-whisper tiny.en int8 + hassil/home-assistant-intents)", peer_report, [part_name], args.show_wrong)
    return 0
