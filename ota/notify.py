"""The agent's MQTT edge: retained status out, retained update notifications in (paho, own thread).

A broker that is down never blocks or fails an update: statuses are also written to status.json,
and the latest one is re-published (retained) whenever the connection comes back.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as paho

from device.settings import MqttSettings

_LOG = logging.getLogger(__name__)


def status_topic(device_id: str) -> str:
    return f"voxhome/{device_id}/ota/status"


def notify_topic(device_id: str) -> str:
    return f"voxhome/{device_id}/ota/notify"


class OtaMqtt:
    """Connects in the background; `publish_status()` never raises; `wake` is set on a notification."""

    def __init__(self, settings: MqttSettings, device_id: str) -> None:
        self.settings = settings
        self.device_id = device_id
        self.wake = threading.Event()
        self.notifications: list[dict[str, Any]] = []
        self._last: bytes | None = None
        self._lock = threading.Lock()
        self._connected = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{device_id}-ota")
        if settings.username:
            client.username_pw_set(settings.username, settings.password.reveal() if settings.password else None)
        if settings.tls:
            client.tls_set(ca_certs=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file)
        client.reconnect_delay_set(max(1, int(settings.reconnect_min_s)), max(1, int(settings.reconnect_max_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    def start(self) -> None:
        try:
            self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except (OSError, ValueError) as err:
            _LOG.warning("MQTT unavailable (%s); OTA status goes to status.json only", err)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish_status(self, status: dict[str, Any]) -> None:
        payload = json.dumps(status, separators=(",", ":"), sort_keys=True).encode()
        with self._lock:
            self._last = payload
        if self._connected.is_set():
            self._client.publish(status_topic(self.device_id), payload, qos=1, retain=True)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            _LOG.warning("MQTT connect refused: %s", reason)
            return
        self._connected.set()
        client.subscribe(notify_topic(self.device_id), qos=1)
        with self._lock:
            last = self._last
        if last is not None:
            client.publish(status_topic(self.device_id), last, qos=1, retain=True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload.decode("utf-8")) if message.payload else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            _LOG.warning("ignoring a malformed OTA notification (%d bytes)", len(message.payload))
            return
        self.notifications.append(body if isinstance(body, dict) else {"value": body})
        self.wake.set()
