"""The composition root: settings → every part of the speaker, wired, run, and shut down cleanly.

One place builds the parts (front end, speech model, home session, cloud client, voice) and
connects them through the service's event stream. Outputs (printing, speaking, telemetry) see
every event; the assistant sees the front end's events and emits its own to the outputs.
Shutdown (end of a file, SIGTERM) closes the audio source, publishes MQTT availability
'offline' (the broker sends no will on a clean disconnect) and closes the cloud session.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from device.assistant import Assistant, Recognizer, end_via, listen_via
from device.cloud.confirmation import SpokenConfirmation
from device.cloud.decision import RouteDecider
from device.cloud.realtime import RealtimeClient
from device.errors import AudioError, HardwareError, OtaError, ToolError
from device.events import ToolCall, ToolResult
from device.intent.language import HomeLanguage
from device.intent.templates import Templates, load_templates
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.satellite.node import SatelliteHooks, WakeWord
from device.satellite.service import Satellites, open_satellites
from device.service import Service, open_source
from device.settings import Settings
from device.system.notify import Notifier, Watchdog
from device.system.telemetry import StatusReporter, TelemetryOutput
from device.timers.local import LocalTimers
from device.tools.api import ToolSpec
from device.tools.registry import Registry
from device.tools.session import HomeSession
from device.voice.aec import EchoCancelledSource, EchoCanceller, ReferenceBuffer
from device.voice.indicator import LedIndicator
from device.voice.mute import MuteState, MuteSwitch
from device.voice.output import VoiceOutput
from device.voice.prompts import PromptBundle, ensure_prompt_bundle
from device.voice.render import open_voice
from device.voice.speaker import DeviceVoice
from hal.leds import NullLeds, open_leds
from hal.player import NullOutput, Player, open_output
from hal.player import Output as PlayerOutput
from hal.source import AudioSource
from models.manifest import read_manifest
from models.vad import SileroVad
from models.wake_compose import build_wake_model
from ota.slots import SlotStore

_LOGGER = logging.getLogger(__name__)

Output = Callable[[object], None | Awaitable[None]]
SHUTDOWN_DRAIN_S = 2.0
"""On SIGTERM, the longest the turn in progress and the speaker's queue may each take to end."""


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
        # Stamp check (full re-hash after an unclean stop); a bad slot falls back to the other one.
        verified = store.open_verified(kind)
    except OtaError as err:
        _LOGGER.error("installed %s model unusable [%s] %s; using the built-in one", kind, err.code, err.message,
                      extra={"code": err.code})
        return None
    _LOGGER.info("%s model %s from slot %s (%s check)", kind, verified.manifest.version, verified.path.name,
                 verified.method)
    return verified.path


EXIT_RELOAD = 75
"""Exit status after OTA switched a model: systemd restarts the unit, which loads the new one
(and spends one of its trial attempts)."""
SLOT_POLL_S = 5.0


def active_models(settings: Settings) -> dict[str, tuple[str, str]]:
    """{kind: (active slot, version)} as the OTA state file says now (empty without OTA)."""
    try:
        state = SlotStore(Path(settings.device.state_dir) / "ota").load()
    except OtaError:
        return {}
    return {kind: (k.active, k.version) for kind, k in state.kinds.items()}


async def watch_slots(
    settings: Settings, loaded: dict[str, tuple[str, str]], on_change: Callable[[], None], poll_s: float = SLOT_POLL_S
) -> None:
    """Poll the OTA state; when a model we run was switched (update or rollback), reload."""
    while True:
        await asyncio.sleep(poll_s)
        now = await asyncio.to_thread(active_models, settings)
        changed = sorted(kind for kind in now if now[kind] != loaded.get(kind))
        if changed:
            _LOGGER.warning("OTA switched %s; restarting to load the new model", ", ".join(changed))
            on_change()
            return


MODEL_KINDS = ("wake", "vad", "asr", "prompts")


def model_versions(loaded: dict[str, tuple[str, str]]) -> dict[str, str]:
    """What the status reports per model kind: the OTA version running, or 'builtin'."""
    return {kind: loaded[kind][1] if kind in loaded else "builtin" for kind in MODEL_KINDS}


async def report_periodically(telemetry: TelemetryOutput, interval_s: float) -> None:
    """Keep the retained status fresh while nothing happens (events publish on change)."""
    while True:
        await asyncio.sleep(max(1.0, interval_s / 4))
        telemetry.tick()


def build_frontend(settings: Settings) -> Frontend:
    """Wake words and VAD, from the OTA slots where OTA installed a model of the configured name."""
    wake = settings.wake
    wake_dir = installed_bundle(settings, "wake")
    if wake_dir is not None:
        words = []
        for word in wake.words:
            # A bundle carries models by name: okay_nabu.json (+ .tflite) replaces the built-in one.
            candidates = [wake_dir / f"{Path(word.model).stem}{ext}" for ext in (".json", ".onnx", ".tflite")]
            found = next((c for c in candidates if c.is_file()), None)
            words.append(dataclasses.replace(word, model=str(found)) if found is not None else word)
        wake = dataclasses.replace(wake, words=tuple(words))
    vad_dir = installed_bundle(settings, "vad")
    vad_models = sorted(vad_dir.glob("*.onnx")) if vad_dir is not None else []
    vad = SileroVad(vad_models[0]) if vad_models else SileroVad.from_builtin()
    return Frontend(build_wake_model(wake), vad, Pipeline(settings.vad))


def load_recognizer(settings: Settings) -> Recognizer:
    """The speech model: the configured bundle, else the OTA-installed one, else the one built
    from the packaged weights (cached after the first start)."""
    from models.asr.runner import WhisperOnnx

    bundle = Path(settings.asr.bundle) if settings.asr.bundle else installed_bundle(settings, "asr")
    if bundle is None:
        from models.asr.factory import ensure_asr_bundle

        bundle = ensure_asr_bundle(model=settings.asr.model_for(settings.intent.language))
    return WhisperOnnx.load(bundle, threads=settings.asr.threads, language=settings.intent.language)


async def open_home(settings: Settings, on_mute: Callable[[bool], None] | None = None) -> HomeSession | None:
    """The home over MQTT, or None (local commands then answer that the home is unreachable)."""
    if not settings.mqtt.enabled:
        return None
    home = HomeSession(settings, on_mute=on_mute)
    try:
        await home.open()
    except ToolError as err:
        _LOGGER.warning(
            "home not reachable at start (%s); local commands will report it", err.message, extra={"code": err.code}
        )
        return None
    return home


def load_language(settings: Settings) -> Templates:
    """The configured language's sentence files, checked: a bad one stops start-up, first."""
    return load_templates(settings.intent.language, settings.intent.custom_sentences)


def build_language(settings: Settings, registry: Registry, templates: Templates | None = None) -> HomeLanguage:
    """The language's sentences over the home as it is now."""
    return HomeLanguage(registry, templates=templates or load_language(settings), area=settings.device.area)


def open_speaker(settings: Settings) -> PlayerOutput:
    """The configured output; a speaker that can't be opened is reported, not fatal: the home
    commands still work, and `voxhome doctor` says what is wrong."""
    try:
        return open_output(settings.audio.speaker)
    except AudioError as err:
        _LOGGER.error("speaker unavailable, answers will not be heard: %s", err.message)
        return NullOutput()


def open_indicator(settings: Settings) -> LedIndicator:
    """The status LED; a configured LED that isn't there is reported, not fatal."""
    try:
        leds = open_leds(settings.leds)
    except HardwareError as err:
        _LOGGER.error("LED unavailable: %s", err.message, extra={"code": err.code})
        leds = NullLeds()
    return LedIndicator(leds)


def build_voice(settings: Settings, player: Player) -> DeviceVoice:
    """Prompts (the OTA-installed bundle, else the one built with espeak-ng) and the voice
    (loaded now, at boot; espeak-ng if a neural voice's bundle is missing or broken)."""

    def installed_voice(name: str) -> Path | None:
        path = installed_bundle(settings, "tts")
        return path if path is not None and read_manifest(path).metadata.get("voice") == name else None

    tts = open_voice(settings.voice, installed_voice)
    engine = settings.voice.engine if settings.voice.engine in ("flite", "festival") else "espeak-ng"
    bundle = Path(settings.voice.prompts) if settings.voice.prompts else installed_bundle(settings, "prompts")
    if bundle is None:
        bundle = ensure_prompt_bundle(engine)
    prompts = PromptBundle(bundle, speak=(lambda text: tts.speak(text).audio) if tts is not None else None)
    return DeviceVoice(player, prompts, tts)


async def run(
    settings: Settings,
    options: RunOptions,
    outputs: Sequence[Output],
    *,
    speaker: PlayerOutput | None = None,
    recognizer: Recognizer | None = None,
) -> int:
    """Run the speaker until its audio source ends or SIGTERM; `speaker` overrides the
    configured output device (the demo writes a WAV file)."""
    # Under systemd (Type=notify) these talk to it; elsewhere they do nothing.
    notifier = Notifier()
    watchdog = Watchdog(notifier)
    notifier.status("loading models")
    ota_store = SlotStore(Path(settings.device.state_dir) / "ota")
    ota_store.begin_run()  # no clean-stop marker: the installed models are re-hashed in full below
    templates = load_language(settings)
    live_mic = options.audio is None and settings.audio.mic.backend == "alsa"
    # Echo cancellation only where there is an echo: a live microphone near our own speaker.
    reference = ReferenceBuffer() if settings.voice.aec and live_mic else None
    player = Player(
        speaker or open_speaker(settings), settings.audio.speaker,
        reference=reference.push if reference is not None else None,
    )
    source: AudioSource = open_source(settings.audio.mic, options.audio, realtime=options.realtime)
    if reference is not None:
        source = EchoCancelledSource(source, EchoCanceller(), reference)
    frontend = build_frontend(settings)
    if recognizer is None:
        recognizer = await asyncio.to_thread(load_recognizer, settings)
    if settings.wake.verify:
        await asyncio.to_thread(frontend.verify_with, recognizer)
    voice = await asyncio.to_thread(build_voice, settings, player)
    loaded = active_models(settings)  # after boot(): what this process really runs
    async with AsyncExitStack() as stack:
        stack.callback(player.close)
        homes: list[HomeSession] = []

        def publish_status(topic: str, payload: str, retain: bool) -> None:
            for home_session in homes:
                home_session.client.publish_own("status", payload.encode(), retain=retain)

        prometheus = settings.telemetry.prometheus_file
        telemetry = TelemetryOutput(
            StatusReporter(
                settings.device.id, settings.telemetry.interval_s, publish_status,
                Path(prometheus) if prometheus else None,
            ),
            models=model_versions(loaded),
            muted=settings.voice.muted,
            clock=time.monotonic,
        )

        def report_mute(state: MuteState) -> None:
            for home_session in homes:  # Home Assistant's mute switch follows this topic
                home_session.client.publish_own("mute", b"ON" if state.muted else b"OFF")
            telemetry.set_muted(state.muted)  # and the status says so

        indicator = open_indicator(settings)
        stack.callback(indicator.close)
        mute = MuteSwitch(settings.voice.muted, leds=indicator, report=report_mute)
        def mute_from_mqtt(muted: bool) -> None:
            mute.set(muted, "mqtt")

        home = await open_home(settings, on_mute=mute_from_mqtt)
        if home is not None:
            homes.append(home)
            stack.push_async_callback(home.close)
        cloud = None
        confirmation = None
        if settings.cloud.enabled:
            confirmation = SpokenConfirmation(home.tools if home is not None else _NoTools())
            cloud = RealtimeClient(settings.cloud, confirmation, player)
            stack.push_async_callback(cloud.close)

        async def emit(event: object) -> None:
            telemetry.handle(event)
            indicator.handle(event)
            for output in outputs:
                result = output(event)
                if inspect.isawaitable(result):
                    await result

        voice_output = VoiceOutput(voice, player, mute, emit)

        satellites: Satellites | None = None

        async def emit_and_speak(event: object) -> None:
            await emit(event)
            await voice_output.handle(event)
            if satellites is not None:
                await satellites.observe(event)  # HA's "listening" sensor follows the front end

        service = Service(
            source, frontend, [emit_and_speak], muted=lambda: mute.muted, on_frame=watchdog.kick,
        )
        # Home Assistant adopts the speaker as a voice satellite (ESPHome API / Wyoming) when enabled:
        # what isn't local goes to HA's pipeline first, the realtime cloud after it.
        def mute_from_ha(muted: bool) -> None:
            mute.set(muted, "ha")

        satellites = await open_satellites(
            settings, player, emit=emit_and_speak,
            listen=lambda: listen_via(service.inject)(round(settings.cloud.followup_s * 1000), "followup"),
            hooks=SatelliteHooks(mute=mute_from_ha, volume=player.set_volume),
            wake_words=tuple(WakeWord(w.model, w.model.replace("_", " ")) for w in settings.wake.words),
            cloud=cloud,
            heard=frontend.pipeline.backlog,  # mode 'ha' streams the command to HA as it is spoken
        )
        if satellites is not None:
            stack.push_async_callback(satellites.close)
        ha_only = satellites is not None and not satellites.local
        language = build_language(settings, home.registry if home is not None else Registry(), templates)
        timers = LocalTimers(settings.device.state_dir, emit=emit_and_speak, responses=language.responses)
        assistant = Assistant(
            emit=emit_and_speak,
            listen=listen_via(service.inject),
            decider=RouteDecider(min_local_confidence=0.6, cloud_enabled=settings.cloud.enabled or satellites is not None),
            recognizer=None if ha_only else recognizer,
            language=None if ha_only else language,
            timers=timers,
            tools=home.tools if home is not None else None,
            cloud=satellites.turns if satellites is not None else cloud,
            cloud_confirmation=confirmation,
            followup_ms=round(settings.cloud.followup_s * 1000),
            end_now=end_via(service.inject) if settings.vad.early_ms else None,
        )
        if home is not None:
            home.tools.on_sent = assistant.sent  # the 'done' earcon starts on the publish
        # A file that isn't paced is a script of turns: wait for each answer before reading on,
        # as a person waits for the speaker to reply before speaking again.
        sequential = options.audio is not None and not options.realtime

        async def assist(event: object) -> None:
            await assistant.handle(event)
            if sequential:
                await assistant.drain()

        service.add_handler(assist)
        loop = asyncio.get_running_loop()

        stopping = asyncio.Event()

        def shutdown() -> None:
            notifier.stopping()  # systemd then waits for us instead of assuming a hang
            stopping.set()
            if cloud is not None:
                cloud.abort()  # a cloud turn ends now, whatever it is waiting for
            service.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shutdown)
        reload_requested = asyncio.Event()

        def reload() -> None:
            reload_requested.set()
            shutdown()

        watcher = asyncio.create_task(watch_slots(settings, loaded, reload))
        reporter = asyncio.create_task(report_periodically(telemetry, settings.telemetry.interval_s))
        ringer = asyncio.create_task(timers.run())
        telemetry.tick()  # the first retained status, before the first wake
        await assistant.prepare()  # the home's sentence graph, before the first command
        # Audio source open, models loaded, home connected (or reported): now we are a speaker.
        notifier.ready("listening")
        watchdog.start()
        try:
            status = await service.run()
            if stopping.is_set():
                # Asked to stop: finish within a few seconds whatever a turn is doing.
                try:
                    await asyncio.wait_for(assistant.drain(), SHUTDOWN_DRAIN_S)
                except TimeoutError:
                    _LOGGER.warning("the turn in progress did not end within %.0f s; stopping anyway", SHUTDOWN_DRAIN_S)
                await asyncio.to_thread(player.drain, SHUTDOWN_DRAIN_S)
            else:
                await assistant.drain()
                await asyncio.to_thread(player.drain)
        finally:
            watchdog.stop()
            watcher.cancel()
            reporter.cancel()
            ringer.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            frontend.close()
        ota_store.mark_clean_stop()  # only reached without an exception: the stamps stay trusted
        return EXIT_RELOAD if reload_requested.is_set() else status


class _NoTools:
    """The cloud without a home: it can talk, but every tool call says the home is unreachable."""

    def specs(self) -> list[ToolSpec]:
        return []

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        return ToolResult(call.call_id, call.name, "error", {"code": "mqtt-offline"}, "the home is not reachable")
