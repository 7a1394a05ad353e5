"""The paho-mqtt 2.x adapter: the only place voxhome talks to the broker.

paho runs its network loop in its own thread; every callback is handed to the asyncio loop with
`call_soon_threadsafe`, so the rest of voxhome stays single-threaded.

Policy, in one place:
* commands are QoS 1, never retained, and only to a topic on the allow-list (known entities'
  command topics) — no wildcards, bounded sizes;
* a command issued while the broker is down waits in our own queue (not paho's) and goes out when
  the connection returns before its deadline, or fails with `mqtt-offline`: never dropped silently,
  never queued twice; MQTT v5 message expiry carries the remaining deadline;
* reconnects back off exponentially with jitter, capped;
* the last will marks `voxhome/<id>/availability` offline (retained); a clean stop publishes it too,
  because the broker sends no will after a clean disconnect.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.errors import ToolError
from device.settings import MqttSettings
from device.tools.confirm import reserved_topic
from device.tools.discovery import OwnTopics

_LOGGER = logging.getLogger(__name__)
MAX_TOPIC = 256
MAX_PAYLOAD = 4096
MAX_INCOMING = 256 * 1024


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Capped exponential backoff with 'equal jitter': half fixed, half random (pure)."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def check_command(topic: str, payload: bytes, allowed: frozenset[str], prefix: str = "homeassistant") -> None:
    """Raise ToolError unless this is a publishable command (pure; the fuzz tests hammer it)."""
    if not topic or len(topic) > MAX_TOPIC or any(c in topic for c in "+#\x00"):
        raise ToolError("mqtt-topic", f"refusing to publish to an invalid topic {topic[:60]!r}")
    why = reserved_topic(topic, prefix)
    if why is not None:
        raise ToolError("mqtt-reserved-topic", f"refusing to publish to {topic[:60]!r}: it is {why}")
    if not payload:
        # An empty message deletes a retained value (and, on a config topic, the entity).
        raise ToolError("mqtt-payload", f"refusing to publish an empty payload to {topic[:60]!r}")
    if topic not in allowed:
        raise ToolError("mqtt-topic", f"refusing to publish to {topic[:60]!r}: not a known entity's command topic")
    if len(payload) > MAX_PAYLOAD:
        raise ToolError("mqtt-payload", f"refusing to publish {len(payload)} bytes (limit {MAX_PAYLOAD})")


@dataclass(slots=True)
class _Pending:
    topic: str
    payload: bytes
    deadline: float
    done: asyncio.Future[None]
    sent: bool = False
    mid: int | None = None


@dataclass(slots=True)
class _Conn:
    connected: bool = False
    attempt: int = 0
    v5: bool = True
    subscribed: set[str] = field(default_factory=set)
    stopping: bool = False
    refused: int | None = None


class MqttClient:
    def __init__(
        self,
        settings: MqttSettings,
        device_id: str,
        *,
        on_message: Callable[[str, bytes], None],
        allowed: Callable[[], frozenset[str]],
        subscriptions: Callable[[], set[str]],
        announce: list[tuple[str, bytes]] | None = None,
        on_mute: Callable[[bool], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.own = OwnTopics(device_id)
        self._device_id = device_id
        self._on_message = on_message
        self._allowed = allowed
        self._subscriptions = subscriptions
        self._announce = announce or []
        self._on_mute = on_mute
        self._rng = rng or random.Random()
        self._clock = clock
        self._conn = _Conn()
        self._queue: list[_Pending] = []
        self._inflight: dict[int, _Pending] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._connected_event: asyncio.Event | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connected_event = asyncio.Event()
        self._client = self._make_client()
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()

    async def wait_connected(self, within_s: float) -> bool:
        assert self._connected_event is not None
        try:
            await asyncio.wait_for(self._connected_event.wait(), within_s)
        except TimeoutError:
            return False
        return True

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def refused(self) -> int | None:
        """The broker's reason code when it last refused us (bad credentials: 134/135 or 4/5)."""
        return self._conn.refused

    async def stop(self) -> None:
        """Clean shutdown: mark ourselves offline (retained), then disconnect."""
        client = self._client
        if client is None:
            return
        self._conn.stopping = True
        if self._conn.connected:
            info = client.publish(self.own.availability, b"offline", qos=1, retain=True)
            await asyncio.get_running_loop().run_in_executor(None, _wait_published, info, 2.0)
        client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, client.loop_stop)
        self._client = None
        for pending in [*self._queue, *self._inflight.values()]:
            _fail(pending, ToolError("mqtt-stopped", "the MQTT connection was closed before the command went out"))
        self._queue.clear()
        self._inflight.clear()

    def _make_client(self) -> paho.Client:
        s = self.settings
        protocol = MQTTProtocolVersion.MQTTv5 if self._conn.v5 else MQTTProtocolVersion.MQTTv311
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self._device_id, protocol=protocol)
        if s.username:
            client.username_pw_set(s.username, s.password.reveal() if s.password else None)
        if s.tls:
            context = ssl.create_default_context(cafile=s.ca_file)
            if s.cert_file:
                context.load_cert_chain(s.cert_file, s.key_file)
            client.tls_set_context(context)
        client.will_set(self.own.availability, b"offline", qos=1, retain=True)
        delay = backoff_delay(0, s.reconnect_min_s, s.reconnect_max_s, self._rng)
        client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]  # typed int, takes seconds as float
        client.on_socket_open = _no_delay
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_connect_fail = self._cb_connect_fail
        client.on_message = self._cb_message
        client.on_publish = self._cb_publish
        return client

    # --- paho thread → asyncio loop ------------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._call(self._connected, int(getattr(reason, "value", reason)))

    def _cb_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._next_delay()
        self._call(self._disconnected)

    def _cb_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._next_delay()

    def _cb_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if len(message.payload) <= MAX_INCOMING:
            self._call(self._message, message.topic, bytes(message.payload))

    def _cb_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._call(self._acked, mid, int(getattr(reason, "value", 0)))

    def _next_delay(self) -> None:
        # Runs in paho's thread just before it sleeps; setting min=max makes paho wait exactly this.
        self._conn.attempt += 1
        delay = backoff_delay(self._conn.attempt, self.settings.reconnect_min_s, self.settings.reconnect_max_s, self._rng)
        if self._client is not None:
            self._client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]  # typed int, takes float

    # --- on the asyncio loop -------------------------------------------------------------------

    def _connected(self, reason: int) -> None:
        client = self._client
        if client is None:
            return
        if reason in (1, 0x84) and self._conn.v5:
            _LOGGER.warning("broker does not speak MQTT v5; falling back to 3.1.1 (no message expiry)")
            self._conn.v5 = False
            client.disconnect()
            client.loop_stop()
            self._client = self._make_client()
            self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
            self._client.loop_start()
            return
        if reason != 0:
            _LOGGER.warning("broker refused the connection (reason %s)", reason)
            self._conn.refused = reason
            return
        self._conn.refused = None
        _LOGGER.info("connected to %s:%s", self.settings.host, self.settings.port)
        self._conn.connected = True
        self._conn.attempt = 0
        self._conn.subscribed = set()
        self.update_subscriptions()
        client.subscribe(self.own.mute_command, qos=1)
        client.publish(self.own.availability, b"online", qos=1, retain=True)
        self._publish_announce()
        assert self._connected_event is not None
        self._connected_event.set()
        queued, self._queue = self._queue, []
        for pending in queued:
            if self._clock() >= pending.deadline:
                _fail(pending, _offline_error())
            elif not pending.done.done():
                self._send(pending)

    def _disconnected(self) -> None:
        if self._conn.connected and not self._conn.stopping:
            _LOGGER.warning("lost the MQTT connection; reconnecting")
        self._conn.connected = False
        if self._connected_event is not None:
            self._connected_event.clear()

    def _publish_announce(self) -> None:
        assert self._client is not None
        for topic, payload in self._announce:
            self._client.publish(topic, payload, qos=1, retain=True)

    def _message(self, topic: str, payload: bytes) -> None:
        if topic == self.own.mute_command and self._on_mute is not None:
            if payload in (b"ON", b"OFF"):
                self._on_mute(payload == b"ON")
            return
        try:
            self._on_message(topic, payload)
        except Exception:  # a bad message must never take the connection down
            _LOGGER.exception("error handling a message on %s", topic[:100])
        if topic == f"{self.settings.discovery_prefix}/status" and payload == b"online" and self._client is not None:
            # Home Assistant restarted: announce again and re-read discovery (retained) configs.
            self._publish_announce()
            discovery = {t for t in self._conn.subscribed if t.endswith("/config")}
            for t in discovery:
                self._client.unsubscribe(t)
                self._client.subscribe(t, qos=1)

    def update_subscriptions(self) -> None:
        """Follow the registry's topics (called after discovery adds or removes entities)."""
        if self._client is None or not self._conn.connected:
            return
        wanted = self._subscriptions()
        for topic in sorted(wanted - self._conn.subscribed):
            self._client.subscribe(topic, qos=1)
        for topic in sorted(self._conn.subscribed - wanted):
            self._client.unsubscribe(topic)
        self._conn.subscribed = set(wanted)

    def _acked(self, mid: int, reason: int) -> None:
        pending = self._inflight.pop(mid, None)
        if pending is None or pending.done.done():
            return
        if reason >= 0x80:
            pending.done.set_exception(ToolError("mqtt-refused", f"the broker refused the command (reason {reason})"))
        else:
            pending.done.set_result(None)

    def _send(self, pending: _Pending) -> None:
        assert self._client is not None
        properties = None
        if self._conn.v5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = max(1, math.ceil(pending.deadline - self._clock()))
        info = self._client.publish(pending.topic, pending.payload, qos=1, retain=False, properties=properties)
        pending.sent = True
        pending.mid = info.mid
        self._inflight[info.mid] = pending
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._inflight.pop(info.mid, None)
            _fail(pending, ToolError("mqtt-publish", f"publishing failed: {paho.error_string(info.rc)}"))

    # --- the one way to send a command ---------------------------------------------------------

    async def publish_command(self, topic: str, payload: bytes, *, within_s: float) -> None:
        """Publish one command (QoS 1, not retained) and wait for the broker's PUBACK.

        Raises ToolError: `mqtt-topic`/`mqtt-payload` (refused here), `mqtt-offline` (the broker
        stayed down past the deadline; the command was never sent), `mqtt-timeout` (sent, but not
        acknowledged in time: it may still arrive once, within its message expiry).
        """
        check_command(topic, payload, self._allowed(), self.settings.discovery_prefix)
        if self._client is None:
            raise ToolError("mqtt-stopped", "the MQTT connection is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(topic, payload, self._clock() + within_s, loop.create_future())
        if self._conn.connected:
            self._send(pending)
        else:
            _LOGGER.info("broker is down; holding a command for %s for up to %.1f s", topic, within_s)
            self._queue.append(pending)
        try:
            await asyncio.wait_for(asyncio.shield(pending.done), within_s)
        except TimeoutError:
            if pending in self._queue:
                self._queue.remove(pending)
            if pending.mid is not None:
                self._inflight.pop(pending.mid, None)
            if not pending.sent:
                raise _offline_error() from None
            raise ToolError("mqtt-timeout", "the broker did not acknowledge the command in time") from None

    def publish_own(self, suffix: str, payload: bytes, *, retain: bool = True) -> None:
        """Publish the speaker's own state (voxhome/<id>/<suffix>); best effort, fire and forget."""
        if self._client is None or "+" in suffix or "#" in suffix or len(payload) > MAX_PAYLOAD:
            return
        self._client.publish(f"{self.own.base}/{suffix}", payload, qos=1, retain=retain)


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    # Commands are a few bytes; Nagle would hold one back ~40 ms behind an unacknowledged packet.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def _offline_error() -> ToolError:
    return ToolError("mqtt-offline", "the home's MQTT broker is unreachable, so the command was not sent")


def _fail(pending: _Pending, error: ToolError) -> None:
    if not pending.done.done():
        pending.done.set_exception(error)
        # Nobody may be awaiting any more (the caller timed out); don't warn about it.
        pending.done.exception()


def _wait_published(info: paho.MQTTMessageInfo, timeout: float) -> None:
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):
        pass
