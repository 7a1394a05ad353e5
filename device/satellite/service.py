"""The satellites as one part of the appliance: start what the config enables, hand the assistant
its cloud seam, follow the front end for HA's 'listening' sensor, close everything at the end.

`[esphome] mode` decides who understands: 'local-first' keeps the device's recognizer and
language (`local` is True) and HA's pipeline gets only what is not local; 'ha' means the assistant
is built without them (`local` is False), so every utterance reaches HA, streamed while it is spoken. With HA not connected a
turn goes to the realtime cloud if there is one, else the speaker says it can't reach HA.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from device.cloud.realtime import CloudOutcome
from device.satellite.esphome_api import EsphomeServer, SatelliteHooks, SpeakerState, WakeWord
from device.satellite.health import status_path
from device.satellite.live import Heard, SpokenAudio
from device.satellite.pipeline import UNREACHABLE, HaOutcome, HaTurns
from device.satellite.wyoming_sat import WyomingSatellite
from device.settings import Settings
from hal.sink import AudioSink

log = logging.getLogger(__name__)

Emit = Callable[[object], Awaitable[None]]


class HaFirst:
    """`CloudTurns` over whichever HA is connected (ESPHome before Wyoming), then the cloud."""

    def __init__(self, esphome: HaTurns | None, esphome_server: EsphomeServer | None,
                 wyoming: WyomingSatellite | None, cloud: Any = None) -> None:
        self._esphome, self._server, self._wyoming, self._cloud = esphome, esphome_server, wyoming, cloud
        self._active: Any = None

    async def turn(self, utterance: bytes) -> CloudOutcome:
        if self._esphome is not None and self._server is not None and self._server.voice is not None:
            self._active = self._esphome
        elif self._wyoming is not None and self._wyoming.connected:
            self._active = self._wyoming
        elif self._cloud is not None:
            log.info("Home Assistant is not connected; the cloud takes this turn")
            self._active = self._cloud
        else:
            return HaOutcome("failed", prompt="cloud_unreachable", code="ha-not-connected", text=UNREACHABLE)
        try:
            outcome: CloudOutcome = await self._active.turn(utterance)
            return outcome
        finally:
            self._active = None

    async def interrupt(self, reason: str = "wake") -> int:
        if self._active is None:
            return 0
        heard: int = await self._active.interrupt(reason)
        return heard


@dataclass
class Satellites:
    turns: HaFirst
    """The assistant's `cloud`."""
    local: bool
    """Keep the device's own understanding (mode 'local-first')."""
    esphome: EsphomeServer | None = None
    wyoming: WyomingSatellite | None = None
    pipeline: HaTurns | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def observe(self, event: object) -> None:
        """An emit target: HA's 'listening' sensor follows wake and end of speech; in mode 'ha'
        the command streams to HA's pipeline as it is spoken."""
        if self.esphome is not None:
            await self.esphome.observe(event)
        if self.pipeline is not None:
            await self.pipeline.observe(event)

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()


async def open_satellites(
    settings: Settings,
    sink: AudioSink,
    *,
    emit: Emit,
    listen: Callable[[], None] | None = None,
    hooks: SatelliteHooks | None = None,
    wake_words: tuple[WakeWord, ...] = (),
    cloud: Any = None,
    version: str = "0",
    heard: Heard | None = None,
) -> Satellites | None:
    """Start the enabled satellites (None when neither is); `cloud` is the fallback CloudTurns;
    `heard` is the front end's utterance so far (`Pipeline.backlog`), which mode 'ha' streams."""
    es, wy = settings.esphome, settings.wyoming
    if not es.enabled and not wy.enabled:
        return None
    node = es.name or settings.device.id
    server = turns = sat = None
    closers: list[Callable[[], Awaitable[None]]] = []
    if es.enabled:
        state = SpeakerState(muted=settings.voice.muted, wake_words=wake_words,
                             active_wake_words=tuple(w.id for w in wake_words))
        server = EsphomeServer(es, node, friendly_name=settings.device.name, area=settings.device.area,
                               hooks=hooks, state=state, version=version, status_file=status_path(settings))
        live = SpokenAudio(heard, settings.vad.threshold) if es.mode == "ha" and heard is not None else None
        turns = HaTurns(server, sink, emit=emit, listen=listen, wake_phrase=wake_words[0].phrase if wake_words else "",
                        live=live, followup_s=settings.cloud.followup_s)
        await server.start()
        closers.append(server.close)
    if wy.enabled:
        sat = WyomingSatellite(sink, name=wy.name or settings.device.id, port=wy.port, area=settings.device.area,
                               wake_words=tuple(w.id for w in wake_words), emit=emit,
                               timer=hooks.timer if hooks is not None else None)
        await sat.start()
        closers.append(sat.close)
    return Satellites(HaFirst(turns, server, sat, cloud), local=es.mode == "local-first",
                      esphome=server, wyoming=sat, pipeline=turns, _closers=closers)
