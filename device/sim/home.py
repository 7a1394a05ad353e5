"""The virtual home: publishes retained discovery configs and plays the devices.

`voxhome sim home --discovery FILE` (or `python -m device.sim.home`) connects to the broker,
publishes every config of FILE retained, then answers commands on the devices' command topics with
state updates the way zigbee2mqtt and Tasmota devices do (retained state, JSON for JSON lights).
`VirtualHome` is the pure part: command in → state messages out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from device.errors import ConfigError
from device.tools.discovery import DiscoveryError, Removal, parse_message
from device.tools.registry import Entity, is_command_key

_LOGGER = logging.getLogger(__name__)
Message = tuple[str, bytes]


def _payload(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def load_home(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError("sim-home-file", f"can't read the home file {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("configs"), list):
        raise ConfigError("sim-home-file", f"{path}: expected an object with a 'configs' list")
    return data


class VirtualHome:
    def __init__(self, data: dict[str, Any], *, ignore: frozenset[str] = frozenset()) -> None:
        self.configs: list[Message] = [(c["topic"], _payload(c["payload"])) for c in data["configs"]]
        self.initial: list[Message] = [(m["topic"], _payload(m["payload"])) for m in data.get("initial", [])]
        self.ignore = ignore
        """Entity ids that swallow commands without answering (to test 'unconfirmed')."""
        self.entities: list[Entity] = []
        for topic, payload in self.configs:
            try:
                parsed = parse_message(topic, payload)
            except DiscoveryError:
                continue
            if isinstance(parsed, Removal):
                continue
            for found in parsed:
                self.entities.append(Entity(found.entity_id, found.component, found.name, found.area, found.config))
        self.state: dict[str, dict[str, Any]] = {e.id: {"state": "OFF"} for e in self.entities}

    def command_topics(self) -> list[str]:
        return sorted({t for e in self.entities for t in e.command_topics})

    def handle(self, topic: str, payload: bytes) -> list[Message]:
        """The state messages a real device would publish after this command."""
        out: list[Message] = []
        text = payload.decode("utf-8", "replace")
        for e in self.entities:
            if e.id in self.ignore or topic not in e.command_topics:
                continue
            out += self._device(e, topic, text)
        return out

    def _device(self, e: Entity, topic: str, text: str) -> list[Message]:
        c, st = e.config, self.state[e.id]
        key = next(k for k, v in c.items() if v == topic and is_command_key(e.component, k))
        if e.component == "light" and c.get("schema") == "json":
            try:
                body = json.loads(text)
            except ValueError:
                return []
            if not isinstance(body, dict):
                return []
            for k in ("state", "brightness", "color_temp", "color"):
                if k in body:
                    st[k] = body[k]
            if isinstance(body.get("color"), dict):
                st["color_mode"] = next((m for m, keys in (("hs", "h"), ("rgb", "r"), ("xy", "x")) if keys in body["color"]), "xy")
            elif "color_temp" in body:
                st["color_mode"] = "color_temp"
            return [(c["state_topic"], json.dumps(st).encode())]
        if e.component == "scene":
            return []
        if e.component == "media_player":
            return self._media(e, key, text)
        answers = {
            "command_topic": ("state_topic", self._main_state(e, text)),
            "brightness_command_topic": ("brightness_state_topic", text),
            "color_temp_command_topic": ("color_temp_state_topic", text),
            "rgb_command_topic": ("rgb_state_topic", text),
            "hs_command_topic": ("hs_state_topic", text),
            "xy_command_topic": ("xy_state_topic", text),
            "set_position_topic": ("position_topic", text),
            "temperature_command_topic": ("temperature_state_topic", text),
            "mode_command_topic": ("mode_state_topic", text),
            "percentage_command_topic": ("percentage_state_topic", text),
            "preset_mode_command_topic": ("preset_mode_state_topic", text),
        }
        state_key, value = answers.get(key, (None, None))
        out: list[Message] = []
        if state_key and isinstance(c.get(state_key), str) and value is not None:
            out.append((c[state_key], value.encode()))
        if key in ("brightness_command_topic", "rgb_command_topic", "hs_command_topic", "xy_command_topic") and isinstance(c.get("state_topic"), str):
            out.append((c["state_topic"], str(c.get("payload_on", "ON")).encode()))
        if e.component == "cover" and key == "command_topic" and isinstance(c.get("position_topic"), str):
            pos = {"OPEN": "100", "CLOSE": "0"}.get(text)
            if pos is not None:
                out.append((c["position_topic"], pos.encode()))
        return out

    def _media(self, e: Entity, key: str, text: str) -> list[Message]:
        """A player after a verb: playing or paused; the volume echoed where it reports one."""
        c, st = e.config, self.state[e.id]
        if key == "volumeset_topic":
            st["volume"] = text
            return [(c["volume_state_topic"], text.encode())] if isinstance(c.get("volume_state_topic"), str) else []
        st["state"] = "paused" if key == "pause_topic" else "playing"
        return [(c["state_topic"], st["state"].encode())] if isinstance(c.get("state_topic"), str) else []

    @staticmethod
    def _main_state(e: Entity, text: str) -> str | None:
        c = e.config
        if e.component == "lock":
            if text == c.get("payload_lock", "LOCK"):
                return str(c.get("state_locked", "LOCKED"))
            if text == c.get("payload_unlock", "UNLOCK"):
                return str(c.get("state_unlocked", "UNLOCKED"))
            return None
        if e.component == "cover":
            return {c.get("payload_open", "OPEN"): c.get("state_open", "open"),
                    c.get("payload_close", "CLOSE"): c.get("state_closed", "closed"),
                    c.get("payload_stop", "STOP"): c.get("state_stopped", "stopped")}.get(text)
        if text == c.get("payload_on", "ON"):
            return str(c.get("state_on", c.get("payload_on", "ON")))
        if text == c.get("payload_off", "OFF"):
            return str(c.get("state_off", c.get("payload_off", "OFF")))
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--discovery", metavar="FILE", default=str(Path(__file__).with_name("demo_home.json")),
                        help="home file: discovery configs (default: the demo home)")
    parser.add_argument("--mqtt", metavar="URL", default="mqtt://localhost:1883", help="broker, mqtt://host[:port]")
    parser.add_argument("--ignore", metavar="ENTITY", action="append", default=[], help="entity that never answers")
    parser.add_argument("--clear", action="store_true", help="remove the configs (empty retained payloads) and exit")


def run(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    home = VirtualHome(load_home(args.discovery), ignore=frozenset(args.ignore))
    url = urlsplit(args.mqtt)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise ConfigError("config-value", f"--mqtt must look like mqtt://host[:port], not {args.mqtt!r}")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"voxhome-sim-home-{os.getpid()}")
    if url.username:
        client.username_pw_set(url.username)
    stop = threading.Event()

    def on_connect(c: paho.Client, *_: Any) -> None:
        for topic, payload in home.configs:
            c.publish(topic, b"" if args.clear else payload, qos=1, retain=True)
        if args.clear:
            threading.Timer(0.5, stop.set).start()  # let the empty retained configs go out first
            return
        for topic, payload in home.initial:
            c.publish(topic, payload, qos=1, retain=True)
        for topic in home.command_topics():
            c.subscribe(topic, qos=1)
        sys.stdout.write(json.dumps({"type": "sim_ready", "entities": [e.id for e in home.entities]}) + "\n")
        sys.stdout.flush()

    def on_message(c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        for topic, payload in home.handle(msg.topic, bytes(msg.payload)):
            c.publish(topic, payload, qos=1, retain=True)

    client.on_connect = on_connect
    client.on_message = on_message
    # Devices come back quickly after a broker restart; the demo should too.
    client.reconnect_delay_set(0.1, 2.0)  # type: ignore[arg-type]  # typed int, takes float
    client.connect_async(url.hostname, url.port or 1883)
    client.loop_start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    _parser = argparse.ArgumentParser(prog="python -m device.sim.home")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
