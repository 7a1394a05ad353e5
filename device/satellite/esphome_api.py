"""The speaker as an ESPHome device: Home Assistant's native API server (TCP 6053).

HA's esphome integration connects here (aioesphomeapi, plaintext or Noise with the configured
key), reads the device info (voice assistant feature flags), lists the speaker's entities (a mute
switch, a 'listening' binary sensor, the speaker as a media player for volume), subscribes to
their states and to the voice assistant. One `EsphomeServer` serves any number of connections;
the one that subscribed to the voice assistant last is HA's pipeline (`voice`), driven by
`pipeline.HaTurns`. HA's commands reach the rest of the speaker through `SatelliteHooks`.

A connection that sends a bad frame, the wrong key or a message that doesn't parse is closed with
one log line; the server and every other connection keep running. The node is announced over
zeroconf as `_esphomelib._tcp` so HA discovers it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from aioesphomeapi.model import VoiceAssistantFeature as Feature
from google.protobuf.message import Message

from device.events import Detection, ListenTimeout, StartListening, VoiceStopped
from device.satellite.frames import (
    FrameError,
    Framer,
    HandshakeError,
    NoiseFramer,
    PlainFramer,
    decode,
)
from device.satellite.node import (
    ESPHOME_VERSION,
    TIMER_KINDS,
    HaTimer,
    SatelliteHooks,
    SpeakerState,
    WakeWord,
    announce,
    node_mac,
)
from device.settings import EsphomeSettings

__all__ = ["EsphomeServer", "HaTimer", "SatelliteHooks", "Session", "SpeakerState", "VoiceListener", "WakeWord"]

log = logging.getLogger(__name__)
pb: Any = importlib.import_module("aioesphomeapi.api_pb2")
"""The generated protobuf module (no type stubs ship with it)."""

API_VERSION = (1, 14)
FEATURES = Feature.VOICE_ASSISTANT | Feature.SPEAKER | Feature.API_AUDIO | Feature.TIMERS | Feature.ANNOUNCE | Feature.START_CONVERSATION
KEY_MUTE, KEY_LISTENING, KEY_SPEAKER = 1, 2, 3
class Session:
    """One client connection: its framer, its writer, what it subscribed to."""

    def __init__(self, server: EsphomeServer, framer: Framer, writer: asyncio.StreamWriter, peer: str) -> None:
        self.server = server
        self.framer = framer
        self.writer = writer
        self.peer = peer
        self.hello = False
        self.states = False
        self.voice_flags: int | None = None
        self.closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, *msgs: Message) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(b"".join(self.framer.encode(m) for m in msgs))

    @property
    def api_audio(self) -> bool:
        return self.voice_flags is not None and bool(self.voice_flags & Feature.API_AUDIO)

    def spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.closed.set()
        self.writer.close()


class VoiceListener:
    """What the pipeline (pipeline.HaTurns) hears from HA's side of the voice assistant."""

    def on_response(self, session: Session, msg: Message) -> None: ...

    def on_event(self, session: Session, msg: Message) -> None: ...

    def on_audio(self, session: Session, msg: Message) -> None: ...

    def on_lost(self, session: Session) -> None: ...


class EsphomeServer:
    def __init__(
        self,
        settings: EsphomeSettings,
        node_name: str,
        *,
        friendly_name: str = "voxhome speaker",
        area: str | None = None,
        hooks: SatelliteHooks | None = None,
        state: SpeakerState | None = None,
        mac: str | None = None,
        version: str = "0",
        status_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.node_name = node_name
        self.friendly_name = friendly_name
        self.area = area
        self.hooks = hooks or SatelliteHooks()
        self.state = state or SpeakerState()
        self.mac = mac or node_mac()
        self.version = version
        self.status_file = status_file
        """Who is connected, for `voxhome doctor` (health.py); None: not written."""
        self.listener: VoiceListener | None = None
        self.sessions: set[Session] = set()
        self.voice: Session | None = None
        """The connection subscribed to the voice assistant (HA's pipeline), if any."""
        self._psk = base64.b64decode(settings.encryption_key) if settings.encryption_key else None
        self._server: asyncio.Server | None = None
        self._zeroconf: Any = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str = "0.0.0.0", *, announce: bool = True) -> None:  # noqa: S104 (HA is on the LAN)
        self._server = await asyncio.start_server(self._serve, host, self.settings.port)
        log.info("ESPHome API on port %d (%s) as %r", self.port, "Noise" if self._psk else "plaintext", self.node_name)
        if announce:
            await self._announce()

    async def close(self) -> None:
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_unregister_all_services()
            await self._zeroconf.async_close()
            self._zeroconf = None
        for session in list(self.sessions):
            session.close()
        if self._handlers:  # each ends at its EOF; wait so none is cancelled mid-cleanup
            await asyncio.wait(set(self._handlers), timeout=2.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _announce(self) -> None:
        self._zeroconf = await announce(self.node_name, self.port, self.mac, encrypted=self._psk is not None,
                                        friendly_name=self.friendly_name, version=self.version)

    # --- what the rest of the speaker tells HA -----------------------------------------------

    async def observe(self, event: object) -> None:
        """An emit target for the service: the 'listening' sensor follows the front end."""
        match event:
            case Detection() | StartListening():
                self.set_listening(True)
            case VoiceStopped() | ListenTimeout():
                self.set_listening(False)

    def set_listening(self, on: bool) -> None:
        self.state.listening = on
        self._broadcast(pb.BinarySensorStateResponse(key=KEY_LISTENING, state=on))

    def set_muted(self, on: bool) -> None:
        self.state.muted = on
        self._broadcast(pb.SwitchStateResponse(key=KEY_MUTE, state=on), self._speaker_state())

    def set_volume(self, volume: float) -> None:
        self.state.volume = max(0.0, min(1.0, volume))
        self._broadcast(self._speaker_state())

    @property
    def connected(self) -> list[str]:
        return [s.peer for s in self.sessions if s.hello]

    def _status(self) -> None:
        if self.status_file is not None and self._server is not None:
            from device.satellite.health import write_status

            write_status(self.status_file, self.connected, self.voice.peer if self.voice else None, self.port)

    def _broadcast(self, *msgs: Message) -> None:
        for session in self.sessions:
            if session.states:
                session.send(*msgs)

    def _speaker_state(self) -> Message:
        return pb.MediaPlayerStateResponse(key=KEY_SPEAKER, state=1, volume=self.state.volume, muted=self.state.muted)

    # --- one connection --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        framer: Framer = NoiseFramer(self._psk, self.node_name, self.mac) if self._psk else PlainFramer()
        session = Session(self, framer, writer, peer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            while not session.closed.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                frames, reply = framer.feed(data)
                if reply:
                    writer.write(reply)
                for msg_type, payload in frames:
                    msg = decode(msg_type, payload)
                    if msg is None:
                        log.debug("%s: ignoring message type %d", peer, msg_type)
                    elif not self._handle(session, msg):
                        session.closed.set()  # a disconnect: answered, then the connection ends
                        break
                await writer.drain()
        except HandshakeError as err:
            log.warning("refused Home Assistant at %s: [%s] %s (the speaker keeps working locally)", peer, err.code, err.message)
            if isinstance(framer, NoiseFramer):
                writer.write(framer.refusal())
        except FrameError as err:
            log.warning("closed the API connection from %s: [%s] %s", peer, err.code, err.message)
            if err.code == "esphome-plaintext":
                writer.write(b"\x01\x00\x00")  # a Noise frame: HA then says "requires encryption"
        except (ConnectionError, OSError) as err:
            log.info("API connection from %s dropped: %s", peer, err)
        finally:
            self.sessions.discard(session)
            if self.voice is session:
                self.voice = None
                if self.listener is not None:
                    self.listener.on_lost(session)
            session.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            if session.hello:
                log.info("Home Assistant at %s disconnected", peer)
                self._status()

    def _handle(self, s: Session, msg: Message) -> bool:
        """Answer one message; False ends the connection."""
        match msg:
            case pb.HelloRequest():
                s.hello = True
                log.info("Home Assistant connected from %s (%s, API %d.%d)", s.peer, msg.client_info,
                         msg.api_version_major, msg.api_version_minor)
                self._status()
                s.send(pb.HelloResponse(api_version_major=API_VERSION[0], api_version_minor=API_VERSION[1],
                                        server_info=f"voxhome {self.version}", name=self.node_name))
                return True
            case pb.DisconnectRequest():
                s.send(pb.DisconnectResponse())
                return False
            case pb.DisconnectResponse():
                return False
            case pb.PingRequest():
                s.send(pb.PingResponse())
                return True
        if not s.hello:
            raise FrameError("esphome-no-hello", f"{type(msg).__name__} before HelloRequest")
        self._handle_ready(s, msg)
        return True

    def _handle_ready(self, s: Session, msg: Message) -> None:  # noqa: C901 (one case per message)
        match msg:
            case pb.AuthenticationRequest():
                pass  # no password (ESPHome's newer flow): nothing to answer
            case pb.DeviceInfoRequest():
                s.send(self._device_info())
            case pb.ListEntitiesRequest():
                s.send(*self._entities(), pb.ListEntitiesDoneResponse())
            case pb.SubscribeStatesRequest():
                s.states = True
                s.send(pb.SwitchStateResponse(key=KEY_MUTE, state=self.state.muted),
                       pb.BinarySensorStateResponse(key=KEY_LISTENING, state=self.state.listening),
                       self._speaker_state())
            case pb.SwitchCommandRequest(key=key) if key == KEY_MUTE:
                self._mute(msg.state)
            case pb.MediaPlayerCommandRequest(key=key) if key == KEY_SPEAKER:
                self._media_command(s, msg)
            case pb.SubscribeVoiceAssistantRequest():
                if msg.subscribe:
                    s.voice_flags = msg.flags
                    self.voice = s
                    self._status()
                    log.info("Home Assistant at %s runs the voice pipeline (%s audio)", s.peer, "API" if s.api_audio else "UDP")
                elif self.voice is s:
                    s.voice_flags = None
                    self.voice = None
            case pb.VoiceAssistantResponse() | pb.VoiceAssistantEventResponse() | pb.VoiceAssistantAudio():
                self._to_listener(s, msg)
            case pb.VoiceAssistantAnnounceRequest():
                s.spawn(self._announce_request(s, msg))
            case pb.VoiceAssistantTimerEventResponse():
                s.spawn(self._timer(msg))
            case pb.VoiceAssistantConfigurationRequest():
                s.send(self._wake_configuration())
            case pb.VoiceAssistantSetConfiguration():
                known = {w.id for w in self.state.wake_words}
                chosen = tuple(w for w in msg.active_wake_words if w in known)
                self.state.active_wake_words = chosen
                log.info("HA selected wake words %s", ", ".join(chosen) or "(none)")
                if self.hooks.wake_words is not None:
                    self.hooks.wake_words(chosen)
            case _:
                log.debug("%s: %s not handled", s.peer, type(msg).__name__)

    def _to_listener(self, s: Session, msg: Message) -> None:
        if self.listener is None:
            log.debug("voice message %s with no pipeline listening", type(msg).__name__)
            return
        match msg:
            case pb.VoiceAssistantResponse():
                self.listener.on_response(s, msg)
            case pb.VoiceAssistantEventResponse():
                self.listener.on_event(s, msg)
            case pb.VoiceAssistantAudio():
                self.listener.on_audio(s, msg)

    def _mute(self, on: bool) -> None:
        if self.hooks.mute is not None:
            self.hooks.mute(on)
        self.set_muted(on)

    def _media_command(self, s: Session, msg: Message) -> None:
        if msg.has_volume:
            if self.hooks.volume is not None:
                self.hooks.volume(max(0.0, min(1.0, msg.volume)))
            self.set_volume(msg.volume)
        if msg.has_command and msg.command in (pb.MEDIA_PLAYER_COMMAND_MUTE, pb.MEDIA_PLAYER_COMMAND_UNMUTE):
            self._mute(msg.command == pb.MEDIA_PLAYER_COMMAND_MUTE)
        if msg.has_media_url and self.hooks.announce is not None:
            s.spawn(self._play_url(msg.media_url))

    async def _play_url(self, url: str) -> None:
        assert self.hooks.announce is not None
        await self.hooks.announce(url, "", False)

    async def _announce_request(self, s: Session, msg: Message) -> None:
        ok = False
        if self.hooks.announce is None:
            log.warning("HA announced %r but this speaker plays no announcements", msg.text[:60])
        else:
            ok = await self.hooks.announce(msg.media_id, msg.preannounce_media_id, msg.start_conversation)
        s.send(pb.VoiceAssistantAnnounceFinished(success=ok))

    async def _timer(self, msg: Message) -> None:
        if not 0 <= msg.event_type < len(TIMER_KINDS):
            log.warning("unknown HA timer event %d", msg.event_type)
            return
        timer = HaTimer(TIMER_KINDS[msg.event_type], msg.timer_id, msg.name, msg.total_seconds, msg.seconds_left, msg.is_active)
        log.info("HA timer %s: %s %r (%d of %d s left)", timer.kind, timer.timer_id, timer.name, timer.left_s, timer.total_s)
        if self.hooks.timer is not None:
            await self.hooks.timer(timer)

    def _device_info(self) -> Message:
        return pb.DeviceInfoResponse(
            uses_password=False, name=self.node_name, friendly_name=self.friendly_name, mac_address=self.mac,
            esphome_version=ESPHOME_VERSION, compilation_time="", model="voxhome speaker", manufacturer="voxhome",
            project_name="voxhome.speaker", project_version=self.version,
            voice_assistant_feature_flags=int(FEATURES), suggested_area=self.area or "",
            api_encryption_supported=self._psk is not None,
        )

    def _entities(self) -> list[Message]:
        return [
            pb.ListEntitiesSwitchResponse(object_id="mute", key=KEY_MUTE, name="Mute", icon="mdi:microphone-off",
                                          entity_category=pb.ENTITY_CATEGORY_CONFIG),
            pb.ListEntitiesBinarySensorResponse(object_id="listening", key=KEY_LISTENING, name="Listening",
                                                device_class="running"),
            pb.ListEntitiesMediaPlayerResponse(object_id="speaker", key=KEY_SPEAKER, name="Speaker", supports_pause=False),
        ]

    def _wake_configuration(self) -> Message:
        words = [pb.VoiceAssistantWakeWord(id=w.id, wake_word=w.phrase, trained_languages=list(w.languages))
                 for w in self.state.wake_words]
        return pb.VoiceAssistantConfigurationResponse(
            available_wake_words=words, active_wake_words=list(self.state.active_wake_words),
            max_active_wake_words=max(1, len(words)),
        )
