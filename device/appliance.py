"""The composition root: settings → every part of the speaker, wired, run, and shut down cleanly.

One place builds the parts (front end, speech model, home session, cloud client, voice) and
connects them through the service's event stream. Outputs (printing, speaking, telemetry) see
every event; the assistant sees the front end's events and emits its own to the outputs.
Shutdown (end of a file, SIGTERM) closes the audio source, publishes MQTT availability
'offline' (the broker sends no will on a clean disconnect) and closes the cloud session.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from device.assistant import Assistant, Recognizer, listen_via
from device.cloud.decision import RouteDecider
from device.cloud.realtime import RealtimeClient
from device.confirmation import SpokenConfirmation
from device.errors import OtaError, ToolError
from device.events import ToolCall, ToolResult
from device.frontend import Frontend
from device.service import Service, open_source
from device.settings import Settings
from device.tools.api import ToolSpec
from device.tools.session import HomeSession
from hal.sink import AudioSink
from ota.slots import SlotStore

_LOGGER = logging.getLogger(__name__)

Output = Callable[[object], None | Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunOptions:
    audio: str | None = None
    """Read this file instead of the microphone, and stop at its end."""
    realtime: bool = False
    """Pace a file like a live microphone (barge-in and follow-ups then behave as live)."""


def installed_bundle(settings: Settings, kind: str) -> Path | None:
    """The active OTA slot's bundle of `kind`, verified, or None when OTA installed none.

    Each start spends one trial attempt of a freshly switched model (or rolls it back when none
    are left): a model that crashes the service is undone by systemd's restarts alone.
    """
    store = SlotStore(Path(settings.device.state_dir) / "ota")
    try:
        store.load().kind(kind)
    except OtaError:
        return None  # nothing installed for this kind (or no state directory on this machine)
    try:
        outcome, state = store.boot(kind)
        if outcome != "success":
            _LOGGER.warning("%s model %s: %s", kind, state.version, outcome)
        path, manifest = store.load_active(kind)
    except OtaError as err:
        _LOGGER.error("installed %s model unusable (%s); using the built-in one", kind, err.message)
        return None
    _LOGGER.info("%s model %s from slot %s", kind, manifest.version, path.name)
    return path


def load_recognizer(settings: Settings) -> Recognizer:
    """The speech model: the configured bundle, else the OTA-installed one, else the one built
    from the packaged weights (cached after the first start)."""
    from models.asr.runner import WhisperOnnx

    bundle = Path(settings.asr.bundle) if settings.asr.bundle else installed_bundle(settings, "asr")
    if bundle is None:
        from models.asr.factory import ensure_asr_bundle

        bundle = ensure_asr_bundle()
    return WhisperOnnx.load(bundle, threads=settings.asr.threads)


async def open_home(settings: Settings) -> HomeSession | None:
    """The home over MQTT, or None (local commands then answer that the home is unreachable)."""
    if not settings.mqtt.enabled:
        return None
    home = HomeSession(settings)
    try:
        await home.open()
    except ToolError as err:
        _LOGGER.warning("home not reachable at start (%s); local commands will report it", err.message)
        return None
    return home


async def run(
    settings: Settings,
    options: RunOptions,
    outputs: Sequence[Output],
    *,
    speaker: AudioSink,
    recognizer: Recognizer | None = None,
) -> int:
    source = open_source(settings.audio.mic, options.audio, realtime=options.realtime)
    frontend = Frontend.from_settings(settings)
    if recognizer is None:
        recognizer = await asyncio.to_thread(load_recognizer, settings)
    async with AsyncExitStack() as stack:
        home = await open_home(settings)
        if home is not None:
            stack.push_async_callback(home.close)
        cloud = None
        confirmation = None
        if settings.cloud.enabled:
            confirmation = SpokenConfirmation(home.tools if home is not None else _NoTools())
            cloud = RealtimeClient(settings.cloud, confirmation, speaker)
            stack.push_async_callback(cloud.close)

        async def emit(event: object) -> None:
            for output in outputs:
                result = output(event)
                if inspect.isawaitable(result):
                    await result

        service = Service(source, frontend, [emit])
        assistant = Assistant(
            emit=emit,
            listen=listen_via(service.inject),
            decider=RouteDecider(min_local_confidence=0.6, cloud_enabled=settings.cloud.enabled),
            recognizer=recognizer,
            registry=home.registry if home is not None else None,
            tools=home.tools if home is not None else None,
            cloud=cloud,
            cloud_confirmation=confirmation,
            min_command_confidence=settings.asr.min_confidence,
            followup_ms=round(settings.cloud.followup_s * 1000),
        )
        # A file that isn't paced is a script of turns: wait for each answer before reading on,
        # as a person waits for the speaker to reply before speaking again.
        sequential = options.audio is not None and not options.realtime

        async def assist(event: object) -> None:
            await assistant.handle(event)
            if sequential:
                await assistant.drain()

        service.add_handler(assist)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        try:
            status = await service.run()
            await assistant.drain()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            frontend.close()
        return status


class _NoTools:
    """The cloud without a home: it can talk, but every tool call says the home is unreachable."""

    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        return ToolResult(call.call_id, call.name, "error", {"code": "mqtt-offline"}, "the home is not reachable")
