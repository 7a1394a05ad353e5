"""`voxhome bench intent`: local understanding accuracy and transcript → MQTT publish latency.

Accuracy: every case of `intent_cases.json` (the demo home) is understood, and a tool call counts
as right when the tool, the resolved set of entities and the value all match. The peer in the same
run is Home Assistant's stock sentences: hassil with home-assistant-intents alone (no voxhome
sentence files), through the same mapping to tools.

Latency: against a real mosquitto (started here on a free loopback port unless `--mqtt` is given)
and the virtual home, the time from the transcript to the command's arrival at an independent
subscriber, for every case that produces a command. The peer is a bare paho publish of the same
payload to the same subscriber (the transport's own floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from device.cli.common import apply_mqtt_url, print_json
from device.errors import ToolError
from device.events import ToolCall
from device.intent.language import HomeLanguage
from device.intent.templates import load_templates
from device.settings import Settings, replace_path
from device.sim.broker import Mosquitto
from device.tools.registry import Registry
from device.tools.session import HomeSession
from device.tools.tools import HomeTools

CASES = Path(__file__).with_name("intent_cases.json")
DEMO = Path(__file__).resolve().parents[1] / "sim" / "demo_home.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mqtt", metavar="URL", help="broker to use (default: start a private mosquitto)")
    parser.add_argument("--no-latency", action="store_true", help="accuracy only")
    parser.add_argument("--show-misses", action="store_true", help="print each wrong case")


class _NoLink:
    async def publish_command(self, topic: str, payload: bytes, *, within_s: float) -> None:
        raise ToolError("mqtt-stopped", "accuracy runs publish nothing")

    def publish_own(self, suffix: str, payload: bytes, *, retain: bool = True) -> None:
        return None


def demo_registry() -> Registry:
    registry = Registry()
    for c in json.loads(DEMO.read_text())["configs"]:
        registry.handle(c["topic"], json.dumps(c["payload"]).encode())
    return registry


def load_cases(part: str = "cases") -> list[list[Any]]:
    return list(json.loads(CASES.read_text())[part])


def judge(registry: Registry, kind: str, call: ToolCall | None, case: list[Any]) -> bool:
    expected = case[1]
    if expected in ("not_local", "reject", "timer", "answer", "speaker"):
        return kind == expected
    if kind != "tool" or call is None or call.name != expected:
        return False
    want = case[2]
    tools = HomeTools(registry, _NoLink())
    from device.tools.tools import _TOOLS  # the components each tool acts on

    try:
        resolved = {e.id for e in tools.resolve(call.arguments, _TOOLS[call.name][1])}
    except ToolError:
        return False
    if resolved != set(want["entities"]):
        return False
    return all(call.arguments.get(k) == v for k, v in want.items() if k != "entities")


def accuracy(show_misses: bool, part: str = "cases") -> dict[str, Any]:
    registry = demo_registry()
    understanding = HomeLanguage(registry)
    peer = HomeLanguage(registry, templates=load_templates("en", own=False))
    rows: dict[str, list[int]] = {"tool call": [0, 0, 0], "local answer": [0, 0, 0], "not local": [0, 0, 0], "rejection": [0, 0, 0]}
    times = []
    wrong_actions = 0
    for case in load_cases(part):
        group = {"not_local": "not local", "reject": "rejection", "timer": "local answer", "answer": "local answer"}.get(case[1], "tool call")
        start = time.perf_counter()
        decision = understanding.understand(case[0])
        times.append(time.perf_counter() - start)
        ok = judge(registry, decision.kind, decision.call, case)
        peer_decision = peer.understand(case[0])
        peer_ok = judge(registry, peer_decision.kind, peer_decision.call, case)
        rows[group][0] += 1
        rows[group][1] += ok
        rows[group][2] += peer_ok
        # The costly mistake: acting on the wrong device or value (a miss that went to the cloud
        # or was refused costs a round trip; this one moves something in the house).
        wrong_actions += decision.kind == "tool" and not ok
        if show_misses and not ok:
            print_json({"miss": case[0], "expected": case[1:], "got": decision.to_json()})
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    return {"rows": rows, "total": total, "wrong_actions": wrong_actions, "understand_ms_median": 1000 * statistics.median(times)}


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def latency(settings: Settings, sim: subprocess.Popen[str]) -> dict[str, float]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    arrivals: dict[bytes, float] = {}
    got = threading.Event()

    def on_message(client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        arrivals[msg.topic.encode() + b" " + bytes(msg.payload)] = time.perf_counter()
        got.set()

    observer = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-observer")
    observer.on_message = on_message
    observer.on_socket_open = lambda c, u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
    observer.connect(settings.mqtt.host, settings.mqtt.port)
    observer.loop_start()
    try:
        async with HomeSession(settings) as home:
            for topic in sorted(home.registry.command_topics()):
                observer.subscribe(topic, qos=1)
            await asyncio.sleep(0.3)
            understanding = HomeLanguage(home.registry)
            ours, peer = [], []
            for case in load_cases():
                if case[1] in ("not_local", "reject", "get_state", "unlock") or case[1] == "open_cover" and "garage" in case[0]:
                    continue
                arrivals.clear()
                got.clear()
                start = time.perf_counter()
                decision = understanding.understand(case[0])
                if decision.call is None:
                    continue
                result = await home.tools.execute(decision.call)
                # The observer may hear it after the device has answered (the broker's own send
                # buffering); wait for it rather than drop the sample.
                if result.status == "error" or not await asyncio.to_thread(got.wait, 1.0):
                    continue
                ours.append(min(arrivals.values()) - start)
                # Peer: the same payload published straight through paho, same broker and subscriber.
                first = min(arrivals, key=lambda k: arrivals[k])
                raw_topic, _, payload = first.partition(b" ")
                arrivals.clear()
                got.clear()
                start = time.perf_counter()
                observer.publish(raw_topic.decode(), payload, qos=1)
                got.wait(2)
                if arrivals:
                    peer.append(min(arrivals.values()) - start)
    finally:
        observer.disconnect()
        observer.loop_stop()
    return {
        "commands": len(ours),
        "transcript_to_publish_ms_median": 1000 * statistics.median(ours),
        "transcript_to_publish_ms_p90": 1000 * statistics.quantiles(ours, n=10)[-1],
        "bare_publish_ms_median": 1000 * statistics.median(peer),
    }


def run(args: argparse.Namespace) -> int:
    acc = accuracy(args.show_misses)
    round2 = accuracy(args.show_misses, "round2")
    held = accuracy(args.show_misses, "heldout")
    _out("| cases | count | voxhome local | HA stock sentences (peer) |")
    _out("|---|---:|---:|---:|")
    for name, (n, ok, peer_ok) in [*((k, v) for k, v in acc["rows"].items() if v[0]), ("all (tuning set)", acc["total"]), ("round 2 (tuned on)", round2["total"]), ("held-out set", held["total"])]:
        _out(f"| {name} | {n} | {ok}/{n} ({100 * ok / n:.1f}%) | {peer_ok}/{n} ({100 * peer_ok / n:.1f}%) |")
    _out(f"wrong tool calls (acted on the wrong device/value): tuning set {acc['wrong_actions']}, round 2 {round2['wrong_actions']}, held-out {held['wrong_actions']}")
    _out(f"median understand() time: {acc['understand_ms_median']:.2f} ms")
    if args.no_latency:
        return 0
    settings = Settings()
    broker = None
    workdir = None
    url = args.mqtt
    if url is None:
        workdir = tempfile.TemporaryDirectory()
        broker = Mosquitto(Path(workdir.name))
        broker.start()
        url = broker.url
    settings = replace_path(apply_mqtt_url(settings, url), "device.id", "voxhome-bench")
    sim = subprocess.Popen([sys.executable, "-m", "device.sim.home", "--mqtt", url, "--discovery", str(DEMO)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        sim.stdout.readline()
        lat = asyncio.run(latency(settings, sim))
    finally:
        sim.terminate()
        sim.wait(5)
        if broker is not None:
            broker.stop()
        if workdir is not None:
            workdir.cleanup()
    _out(f"transcript → MQTT publish over {lat['commands']} commands: median {lat['transcript_to_publish_ms_median']:.2f} ms, "
          f"p90 {lat['transcript_to_publish_ms_p90']:.2f} ms; bare paho publish (peer): median {lat['bare_publish_ms_median']:.2f} ms")
    return 0
