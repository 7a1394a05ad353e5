"""Home Assistant's voice pipeline as the assistant's cloud seam (`CloudTurns`).

One HA run: VoiceAssistantRequest(start) → HA answers (API audio) → the utterance streams as
VoiceAssistantAudio, then its end → HA's events (STT end: what HA heard; intent end: the
conversation id and whether HA wants a follow-up; TTS end: the URL of the answer) → the answer is
fetched, decoded and played into the speaker → a `CloudOutcome` from `HaTurns.turn`. Every fault
becomes a spoken outcome, never an exception: no HA connected, HA gone mid-pipeline, an HA error
event, a silent HA (deadlines) or TTS audio that can't be fetched.

When the audio goes: with `live` (mode 'ha') the run starts at the wake word and the command
streams while it is spoken (`observe` follows the front end: wake → start, each VAD window → the
audio heard since, the endpoint → the tail and the end), so HA's speech-to-text works along with
the user and `turn` only follows HA's events. Without it (mode 'local-first') the device's own
understanding reads the utterance first and only what is not local reaches HA, after the
endpoint: streaming it earlier would let HA act on a command the device also acts on.

Who understands is the assistant's business (mode 'ha' builds it without a local recognizer).
The same object plays HA's announcements and rings HA's timers (`SatelliteHooks` defaults).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from device.cloud.realtime import CloudOutcome
from device.errors import AudioError
from device.events import (
    Detection,
    Error,
    ListenTimeout,
    Say,
    SpeechProbability,
    StartListening,
    Transcript,
    VoiceStopped,
)
from device.satellite import media
from device.satellite.esphome_api import EsphomeServer, HaTimer, Session, VoiceListener, pb
from device.satellite.live import SpokenAudio
from hal.sink import AudioSink

log = logging.getLogger(__name__)

Emit = Callable[[object], Awaitable[None]]
AUDIO_CHUNK_BYTES = 1024
"""32 ms of 16 kHz pcm16, what ESPHome devices send per message."""
UNREACHABLE = "I can't reach Home Assistant."
MAX_QUEUED = 256
"""HA's messages waiting for the turn; a real run sends about ten."""
_ERROR_PROMPTS = {"stt-no-text-recognized": "not_understood", "stt-stream-failed": "not_understood"}
ET = pb.VoiceAssistantEvent


@dataclass(frozen=True, slots=True)
class HaOutcome(CloudOutcome):
    """A cloud outcome that may also carry the sentence to say (HA's faults are named as HA's)."""

    text: str | None = None

    def say(self) -> Say | None:
        return Say(prompt=self.prompt, text=self.text) if self.prompt else None


@dataclass(frozen=True, slots=True)
class _Lost:
    reason: str


@dataclass(eq=False)
class _Run:
    """One HA pipeline run: its connection, HA's answer to the start, HA's events, the stream."""

    session: Session
    response: asyncio.Future[Message | _Lost]
    events: asyncio.Queue[Message | _Lost]
    live: bool = False
    """The audio streams as it is spoken (observe); otherwise `turn` sends the endpointed utterance."""
    ended: bool = False
    """The device endpointed the utterance: its end goes to HA at once, or with HA's answer to the start."""
    waiting: bytearray = dataclasses.field(default_factory=bytearray)
    """Live audio heard before HA answered the start."""


class HaTurns(VoiceListener):
    def __init__(
        self,
        server: EsphomeServer,
        sink: AudioSink,
        *,
        emit: Emit | None = None,
        listen: Callable[[], None] | None = None,
        wake_phrase: str = "",
        live: SpokenAudio | None = None,
        start_timeout_s: float = 5.0,
        event_timeout_s: float = 20.0,
        turn_timeout_s: float = 90.0,
        followup_s: float = 5.0,
    ) -> None:
        self._server = server
        self._sink = sink
        self._emit = emit
        self._listen = listen
        self._wake_phrase = wake_phrase
        self._spoken = live
        """Mode 'ha': stream each utterance to HA while it is spoken (None: after the endpoint)."""
        self._start_timeout_s = start_timeout_s
        self._event_timeout_s = event_timeout_s
        self._turn_timeout_s = turn_timeout_s
        self._followup_s = followup_s
        self._conversation_id = ""
        self._run: _Run | None = None
        self._turning = False
        self._deferred: Detection | StartListening | None = None
        """A wake word heard while the last turn was still ending (barge-in): its stream opens next."""
        self._interrupted = False
        self._playback: asyncio.Task[int] | None = None
        server.listener = self
        hooks = server.hooks
        server.hooks = dataclasses.replace(
            hooks, announce=hooks.announce or self.announce, timer=hooks.timer or self.ring,
        )

    # --- VoiceListener: HA's messages, from the server's connection handler ---------------

    def on_response(self, session: Session, msg: Message) -> None:
        run = self._run
        if run is None or session is not run.session or run.response.done():
            log.debug("HA's pipeline answer outside a run")
            return
        run.response.set_result(msg)
        if run.live and run.waiting and not msg.error:
            session.send(*_frames(bytes(run.waiting)))
            run.waiting.clear()
            if run.ended:
                session.send(pb.VoiceAssistantAudio(end=True))

    def on_event(self, session: Session, msg: Message) -> None:
        self._put(session, msg)

    def on_lost(self, session: Session) -> None:
        lost = _Lost(f"Home Assistant at {session.peer} disconnected")
        run = self._run
        if run is not None and session is run.session and not run.response.done():
            run.response.set_result(lost)
        self._put(session, lost)

    def _put(self, session: Session, item: Message | _Lost) -> None:
        run = self._run
        if run is None or session is not run.session:
            log.debug("HA voice message outside a turn: %s", type(item).__name__)
            return
        if run.events.qsize() >= MAX_QUEUED and not isinstance(item, _Lost):  # the end of a turn is never dropped
            log.warning("HA sends more than %d messages ahead of the turn; dropped %s", MAX_QUEUED, type(item).__name__)
            return
        run.events.put_nowait(item)

    # --- the utterance as it is spoken (mode 'ha') --------------------------------------

    async def observe(self, event: object) -> None:
        """An emit target: the front end's events drive the live stream (nothing without `live`)."""
        if self._spoken is None:
            return
        match event:
            case Detection() | StartListening():
                if self._turning:
                    self._deferred = event  # the assistant interrupts that turn next; stream once it ended
                else:
                    self._open_live(event)
            case SpeechProbability():
                if self._deferred is not None and not self._turning:
                    self._open_live(self._deferred)
                run = self._run
                if run is not None and run.live and not run.ended:
                    self._send_live(run, self._spoken.window(event))
            case VoiceStopped():
                self._deferred = None
                run = self._run
                if run is not None and run.live and not run.ended:
                    self._send_live(run, self._spoken.end(event))
                    run.ended = True
                    if run.response.done():
                        run.session.send(pb.VoiceAssistantAudio(end=True))
            case ListenTimeout():
                self._deferred = None
                run = self._run
                if run is not None and run.live and not self._turning:
                    run.session.send(pb.VoiceAssistantRequest(start=False))  # nobody spoke: HA's run ends
                    self._run = None

    def _open_live(self, event: Detection | StartListening) -> None:
        assert self._spoken is not None
        self._deferred = None
        session = self._server.voice
        if self._run is not None and not self._turning:
            self._run.session.send(pb.VoiceAssistantRequest(start=False))  # a run nobody finished
            self._run = None
        if session is None:
            return  # no HA: the turn at the endpoint finds another way (the cloud, or says so)
        self._spoken.begin(event)
        self._run = self._start(session, live=True)

    def _send_live(self, run: _Run, audio: bytes) -> None:
        if not audio:
            return
        if not run.response.done():
            run.waiting += audio
        elif not isinstance(answer := run.response.result(), _Lost) and not answer.error:
            run.session.send(*_frames(audio))

    def _start(self, session: Session, *, live: bool) -> _Run:
        loop = asyncio.get_running_loop()
        run = _Run(session, loop.create_future(), asyncio.Queue(), live=live)
        session.send(pb.VoiceAssistantRequest(start=True, conversation_id=self._conversation_id, flags=0,
                                              audio_settings=pb.VoiceAssistantAudioSettings(volume_multiplier=1.0),
                                              wake_word_phrase=self._wake_phrase))
        return run

    # --- CloudTurns ---------------------------------------------------------------------

    async def turn(self, utterance: bytes) -> CloudOutcome:
        run = self._run
        if run is None or not (run.live and run.ended):
            session = self._server.voice
            if session is None:
                log.warning("no Home Assistant subscribed to the voice assistant; can't run its pipeline")
                return _unreachable("ha-not-connected")
            if run is not None:
                run.session.send(pb.VoiceAssistantRequest(start=False))
            run = self._run = self._start(session, live=False)
        self._turning, self._interrupted = True, False
        started = time.monotonic()
        try:
            return await asyncio.wait_for(self._drive(run, utterance, started), self._turn_timeout_s)
        except TimeoutError:
            log.warning("HA's pipeline took longer than %.0f s; turn ended", self._turn_timeout_s)
            run.session.send(pb.VoiceAssistantRequest(start=False))
            return _unreachable("ha-timeout")
        finally:
            if self._playback is not None:
                self._playback.cancel()
            self._turning, self._playback = False, None
            if self._run is run:
                self._run = None

    async def interrupt(self, reason: str = "wake") -> int:
        """Barge-in: HA's pipeline is stopped and the speaker with it; ms of the answer heard."""
        run = self._run
        if run is None or not self._turning:
            return 0
        self._interrupted = True
        run.session.send(pb.VoiceAssistantRequest(start=False))
        run.events.put_nowait(_Lost(f"interrupted ({reason})"))
        if not run.response.done():
            run.response.set_result(_Lost(f"interrupted ({reason})"))
        heard = self._sink.stop()
        if self._playback is not None:
            self._playback.cancel()
        return heard

    async def _drive(self, run: _Run, utterance: bytes, started: float) -> CloudOutcome:
        try:
            item: Message | _Lost | None = await asyncio.wait_for(asyncio.shield(run.response), self._start_timeout_s)
        except TimeoutError:
            item = None
        if isinstance(item, _Lost) or item is None:
            return self._lost(item)
        if item.error:
            log.warning("HA refused to start its pipeline")
            return HaOutcome("failed", prompt="cloud_error", code="ha-pipeline-refused", text="Home Assistant couldn't start its assistant.")
        session = run.session
        if not session.api_audio:
            log.warning("HA asked for UDP audio (port %d); this speaker streams over the API only", item.port)
            session.send(pb.VoiceAssistantRequest(start=False))
            return HaOutcome("failed", prompt="cloud_error", code="ha-udp-audio", text="Home Assistant wants audio over UDP, which this speaker doesn't send.")
        if not run.live:
            try:
                for frame in _frames(utterance):
                    session.send(frame)
                    await session.writer.drain()
                session.send(pb.VoiceAssistantAudio(end=True))
                await session.writer.drain()
            except (ConnectionError, OSError) as err:
                return self._lost(_Lost(f"Home Assistant at {session.peer} went away during the audio: {err}"))
        return await self._follow(run.events, started)

    async def _follow(self, queue: asyncio.Queue[Message | _Lost], started: float) -> CloudOutcome:
        """HA's pipeline events until its run ends; the TTS answer plays as soon as its URL is known."""
        user_text = reply_text = ""
        followup = False
        played = 0
        first_audio_ms: int | None = None
        error: HaOutcome | None = None
        while True:
            item = await self._next(queue, self._event_timeout_s)
            if isinstance(item, _Lost) or item is None:
                if self._playback is not None:
                    self._playback.cancel()
                return self._lost(item, user_text=user_text)
            if not isinstance(item, pb.VoiceAssistantEventResponse):
                continue
            data = {d.name: d.value for d in item.data}
            match item.event_type:
                case ET.VOICE_ASSISTANT_STT_END:
                    user_text = data.get("text", "")
                    log.info("HA heard %r", user_text)
                    await self._say(Transcript(user_text))
                case ET.VOICE_ASSISTANT_INTENT_END:
                    self._conversation_id = data.get("conversation_id", self._conversation_id)
                    followup = data.get("continue_conversation") == "1"
                case ET.VOICE_ASSISTANT_TTS_START:
                    reply_text = data.get("text", "")
                case ET.VOICE_ASSISTANT_TTS_END if data.get("url"):
                    url = data["url"]
                    first_audio_ms = round((time.monotonic() - started) * 1000)
                    self._playback = asyncio.create_task(self._play(url))
                case ET.VOICE_ASSISTANT_ERROR:
                    code, message = data.get("code", "error"), data.get("message", "")
                    log.warning("HA's pipeline failed: [%s] %s", code, message)
                    await self._say(Error(f"ha-{code}", message or "Home Assistant's pipeline failed"))
                    prompt = _ERROR_PROMPTS.get(code, "cloud_error")
                    error = HaOutcome("failed", prompt=prompt, code=f"ha-{code}", user_text=user_text,
                                      text=None if prompt != "cloud_error" else "Home Assistant had a problem.")
                case ET.VOICE_ASSISTANT_RUN_END:
                    if self._playback is not None:
                        # HA ends its run as soon as the URL is out; the turn ends when it was heard.
                        await asyncio.wait({self._playback})
                        if self._playback.cancelled():
                            return self._lost(None, user_text=user_text)
                        played = self._playback.result()
                    break
        if error is not None:
            return error
        if played < 0:
            return HaOutcome("failed", prompt="cloud_error", code="ha-tts-audio", reply_text=reply_text, user_text=user_text,
                             text="I couldn't play Home Assistant's answer.")
        return HaOutcome("ok" if reply_text or played else "empty", reply_text=reply_text, user_text=user_text,
                         played_ms=played, first_audio_ms=first_audio_ms,
                         followup_s=self._followup_s if followup else 0.0)

    async def _next(self, queue: asyncio.Queue[Message | _Lost], timeout_s: float) -> Message | _Lost | None:
        try:
            return await asyncio.wait_for(queue.get(), timeout_s)
        except TimeoutError:
            return None

    def _lost(self, item: _Lost | None, user_text: str = "") -> CloudOutcome:
        if self._interrupted:
            return HaOutcome("interrupted", user_text=user_text)
        reason = item.reason if item is not None else "no answer from Home Assistant in time"
        log.warning("HA's pipeline ended: %s", reason)
        return _unreachable("ha-unreachable" if item is not None else "ha-timeout", user_text)

    async def _play(self, url: str) -> int:
        """ms of HA's answer heard, or -1 when it couldn't be fetched or decoded."""
        try:
            audio = await media.load(url)
        except AudioError as err:
            log.warning("HA's answer can't be played: [%s] %s", err.code, err.message)
            return -1
        return await media.play(self._sink, audio)

    async def _say(self, event: object) -> None:
        if self._emit is not None:
            await self._emit(event)

    # --- SatelliteHooks defaults ----------------------------------------------------------

    async def announce(self, media_url: str, preannounce_url: str, start_conversation: bool) -> bool:
        """HA's announcement (assist_satellite.announce): the chime, the message, then maybe listen."""
        try:
            for url in (preannounce_url, media_url):
                if url:
                    await media.play(self._sink, await media.load(url))
        except AudioError as err:
            log.warning("HA's announcement can't be played: [%s] %s", err.code, err.message)
            return False
        if start_conversation and self._listen is not None:
            self._listen()
        return True

    async def ring(self, timer: HaTimer) -> None:
        """HA's timer finished: the timer earcon and its name, through the speaker's voice."""
        if timer.kind == "finished":
            name = f"The {timer.name} timer" if timer.name else "Your timer"
            await self._say(Say(prompt="timer", text=f"{name} is done."))


def _frames(audio: bytes) -> list[Message]:
    return [pb.VoiceAssistantAudio(data=audio[i:i + AUDIO_CHUNK_BYTES]) for i in range(0, len(audio), AUDIO_CHUNK_BYTES)]


def _unreachable(code: str, user_text: str = "") -> HaOutcome:
    return HaOutcome("failed", prompt="cloud_unreachable", code=code, user_text=user_text, text=UNREACHABLE)
