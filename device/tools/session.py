"""One connected home: registry + MQTT client + tools, wired together (used by `say`, the bench
and the service).

`HomeSession.open()` connects, announces the speaker, and waits until the retained discovery
configs and states have arrived (the broker sends them right after each subscription), so the
registry describes the home before the first command is understood.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import TracebackType

from device.errors import ToolError
from device.settings import Settings
from device.tools.confirm import ConfirmPolicy
from device.tools.discovery import announce_configs
from device.tools.mqtt import MqttClient
from device.tools.registry import Registry
from device.tools.tools import HomeTools

_LOGGER = logging.getLogger(__name__)
VERSION = "0.1"


class HomeSession:
    def __init__(self, settings: Settings, *, on_mute: Callable[[bool], None] | None = None) -> None:
        self.settings = settings
        self.muted = settings.voice.muted
        self._mute_listener = on_mute
        announce = announce_configs(settings.device.id, settings.device.name, VERSION, settings.mqtt.discovery_prefix)
        self.registry = Registry(settings.home, prefix=settings.mqtt.discovery_prefix, ignore=frozenset(t for t, _ in announce))
        self._activity = asyncio.Event()
        self.client = MqttClient(
            settings.mqtt,
            settings.device.id,
            on_message=self._on_message,
            allowed=self.registry.command_topics,
            subscriptions=self.registry.subscriptions,
            announce=announce,
            on_mute=self._on_mute,
        )
        self.tools = HomeTools(
            self.registry, self.client, policy=ConfirmPolicy(frozenset(settings.mqtt.risky)),
            timeout_s=settings.mqtt.command_timeout_s,
        )

    def _on_mute(self, muted: bool) -> None:
        """Home Assistant flipped our mute switch: report the new state back, retained."""
        self.muted = muted
        self.client.publish_own("mute", b"ON" if muted else b"OFF")
        if self._mute_listener is not None:
            self._mute_listener(muted)

    def _on_message(self, topic: str, payload: bytes) -> None:
        self._activity.set()
        if self.registry.handle(topic, payload):
            self.client.update_subscriptions()

    async def open(self, *, connect_timeout_s: float = 5.0, settle_s: float = 0.3, max_settle_s: float = 3.0) -> None:
        if not self.settings.mqtt.enabled:
            raise ToolError("mqtt-disabled", "MQTT is switched off in the config (mqtt.enabled = false)")
        await self.client.start()
        if not await self.client.wait_connected(connect_timeout_s):
            refused = self.client.refused
            await self.client.stop()
            s = self.settings.mqtt
            if refused is not None:
                raise ToolError("mqtt-refused", f"the MQTT broker at {s.host}:{s.port} refused us (reason {refused}); check mqtt.username/password")
            raise ToolError("mqtt-offline", f"can't reach the MQTT broker at {s.host}:{s.port}")
        self.client.publish_own("mute", b"ON" if self.muted else b"OFF")
        # Retained messages arrive in a burst after each subscribe; wait until it has been quiet.
        deadline = time.monotonic() + max_settle_s
        while time.monotonic() < deadline:
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), settle_s)
            except TimeoutError:
                break

    async def close(self) -> None:
        await self.client.stop()

    async def __aenter__(self) -> HomeSession:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
