"""The bench hostile's two links to the outside: a recording command link and a wire on the broker."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as paho

from device.sim.broker import Mosquitto
from device.tools.mqtt import check_command
from device.tools.registry import Registry


class Recorder:
    """A command link that applies the MQTT client's own publish check, then records the message."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.sent: list[tuple[str, bytes]] = []

    async def publish_command(self, topic: str, payload: bytes, *, within_s: float) -> None:
        check_command(topic, payload, self.registry.command_topics())
        self.sent.append((topic, payload))

    def publish_own(self, suffix: str, payload: bytes, *, retain: bool = True) -> None:
        return None


class Wire:
    """The bench's own MQTT client: publishes hostile input and sees everything on '#'.

    `sync()` sends a marker and waits for it to come back; what arrived before it (and isn't
    the bench's own) is what the speaker published meanwhile (`take()`)."""

    def __init__(self, broker: Mosquitto) -> None:
        self._cond = threading.Condition()
        self._seen: list[tuple[str, bytes]] = []
        self._mine: list[tuple[str, bytes]] = []
        self._marks = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-hostile-wire")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self._seen.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        try:
            self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
        except ValueError:  # paho refuses wildcard topics: the broker never sees them
            return
        with self._cond:
            self._mine.append((topic, payload))

    def sync(self, timeout_s: float = 5.0) -> None:
        self._marks += 1
        mark = (f"bench/mark/{self._marks}", b"1")
        self.send(*mark)
        with self._cond:
            if not self._cond.wait_for(lambda: mark in self._seen, timeout_s):
                raise TimeoutError("the broker did not echo the bench's marker")

    def take(self) -> list[tuple[str, bytes]]:
        with self._cond:
            seen, self._seen = self._seen, []
            mine = list(self._mine)
            self._mine.clear()
        for message in mine:  # the bench's own publishes (discovery, markers) are not the speaker's
            if message in seen:
                seen.remove(message)
        return seen

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
