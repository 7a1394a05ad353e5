"""`voxhome doctor`: one line per check (ok/warn/fail + what to do). Each check returns a Check."""

from __future__ import annotations

import datetime
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from device.errors import VoxError
from device.settings import Settings

OTA_FREE_MB = 256
_EPOCH_SANE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail" | "skip"
    detail: str
    fix: str = ""


def _open_check(direction: Literal["capture", "playback"], device: str) -> tuple[int | None, str | None]:
    """Open `device` the way the service does (non-blocking, so a busy device can't hang us):
    (the rate it granted, None) or (None, why not)."""
    from hal.alsa import open_pcm

    try:
        pcm = open_pcm(direction, device, 160, 4, nonblock=True)
    except VoxError as err:
        return None, err.message
    try:
        return int(pcm.info().get("rate", 16000)), None
    finally:
        pcm.close()


def check_audio(settings: Settings) -> Check:
    mic = settings.audio.mic
    if mic.backend != "alsa":
        return Check("audio", "skip", f"mic backend is {mic.backend!r}")
    rate, failed = _open_check("capture", mic.device)
    if failed is not None:
        return Check("audio", "fail", f"{failed} (16 kHz mono)",
                     "check `arecord -L`, set [audio.mic] device, and that the user is in group audio")
    if rate != 16000:
        return Check("audio", "warn", f"{mic.device!r} runs at {rate} Hz", "use a plughw: device")
    return Check("audio", "ok", f"{mic.device!r} opens at 16 kHz mono")


def check_speaker(settings: Settings) -> Check:
    spk = settings.audio.speaker
    if spk.backend != "alsa":
        return Check("speaker", "skip", f"speaker backend is {spk.backend!r}")
    _rate, failed = _open_check("playback", spk.device)
    if failed is not None:
        return Check("speaker", "fail", failed,
                     "check `aplay -L`, set [audio.speaker] device, and that the user is in group audio")
    return Check("speaker", "ok", f"{spk.device!r} opens for playback")


def find_bundles(settings: Settings) -> list[Path]:
    """Every bundle the service could load: the configured speech model, the OTA slots, and
    (where neither gives a speech model) the one the factory built into its cache."""
    found = [Path(settings.asr.bundle)] if settings.asr.bundle else []
    state = Path(settings.device.state_dir)
    # The OTA agent's slots: <state_dir>/ota/slots/<kind>/<a|b> (ota/slots.py).
    slots = sorted(p.parent for p in state.glob("ota/slots/*/*/manifest.json"))
    found += slots
    if not settings.asr.bundle and not any(p.parent.name == "asr" for p in slots):
        from models.asr.factory import cache_root

        found += sorted(p.parent for p in cache_root().glob("asr-*/manifest.json"))
    return found


def check_frontend(settings: Settings) -> Check:
    """The configured wake words and the built-in VAD load (a missing package shows here)."""
    from models.vad import SileroVad
    from models.wake import WakeWordDetector

    try:
        detector = WakeWordDetector.from_settings(settings.wake)
        try:
            SileroVad.from_builtin().close()
        finally:
            detector.close()
    except VoxError as err:
        return Check("front end", "fail", f"{err.code}: {err.message}",
                     "check [[wake.words]] model names; reinstall with ./install.sh")
    return Check("front end", "ok", f"wake words {', '.join(detector.words)}; Silero VAD")


def check_esphome(settings: Settings) -> Check:
    """Whether Home Assistant has the speaker as a voice satellite (ESPHome API)."""
    from device.satellite.health import check_esphome as check

    return check(settings)


def check_language(settings: Settings) -> Check:
    """The configured language's sentences, voxhome's and the user's custom sentence files load."""
    from device.intent.templates import load_templates

    try:
        templates = load_templates(settings.intent.language, settings.intent.custom_sentences)
    except VoxError as err:
        return Check("language", "fail", f"{err.code}: {err.message}",
                     "fix the named sentence file, or set [intent] language to a supported one")
    return Check("language", "ok", f"{templates.language}: {len(templates.intents.intents)} intents, {len(templates.files)} sentence files")


def check_models(bundles: Iterable[Path]) -> list[Check]:
    from models.manifest import BundleManifest, verify_bundle
    from ota.atomic import FileSystem
    from ota.integrity import verify_slot, voxhome_version

    def verify(bundle: Path) -> BundleManifest:
        if bundle.parent.parent.name != "slots" or bundle.name not in ("a", "b"):
            return verify_bundle(bundle)
        # An OTA slot: every byte re-hashed (the service's start only checks the stamp), the firmware
        # checked; a mismatch drops the stamp, so the next start re-hashes and falls back.
        kind = bundle.parent.name
        return verify_slot(FileSystem(), bundle, kind=kind, firmware=voxhome_version(), full=True).manifest

    out: list[Check] = []
    for bundle in bundles:
        try:
            manifest = verify(bundle)
        except VoxError as err:
            out.append(
                Check(
                    f"model {bundle.parent.name}/{bundle.name}",
                    "fail",
                    f"{err.code}: {err.message}",
                    "run `voxhome ota apply` or reinstall the bundle",
                )
            )
        else:
            out.append(
                Check(
                    f"model {manifest.name}", "ok", f"{manifest.kind} {manifest.version} verified"
                )
            )
    return out or [Check("models", "fail", "no model bundle found", "run `voxhome ota apply`")]


def check_broker(settings: Settings, timeout_s: float = 5.0) -> Check:
    cfg = settings.mqtt
    if not cfg.enabled:
        return Check("broker", "skip", "mqtt disabled")
    import paho.mqtt.client as mqtt

    result: list[str] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{settings.device.id}-doctor")
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password.reveal() if cfg.password else None)
    if cfg.tls:
        client.tls_set(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file)

    def on_connect(c: object, u: object, flags: object, rc: object, props: object) -> None:
        result.append(str(rc))
        done.set()

    client.on_connect = on_connect
    where = f"{cfg.host}:{cfg.port}"
    try:
        client.connect(cfg.host, cfg.port, keepalive=10)
        client.loop_start()
        answered = done.wait(timeout_s)
        client.loop_stop()
        client.disconnect()
    except OSError as err:
        return Check(
            "broker",
            "fail",
            f"{where} unreachable: {err}",
            "check [mqtt] host/port and the network",
        )
    if not answered:
        return Check("broker", "fail", f"{where}: no CONNACK", "check TLS settings and port")
    if result[0] != "Success":
        return Check(
            "broker", "fail", f"{where} refused: {result[0]}", "check [mqtt] username/password"
        )
    return Check("broker", "ok", f"connected to {where}")


def check_cloud(settings: Settings, timeout_s: float = 5.0) -> Check:
    """A real session opened with the key over the configured transport (WebSocket handshake, or
    a WebRTC call and, if it fails, the WebSocket its turns fall back to), through the client's own path."""
    import asyncio

    from device.cloud.probe import reach

    cfg = settings.cloud
    if not cfg.enabled:
        return Check("cloud", "skip", "cloud disabled")
    try:
        found = asyncio.run(reach(replace(cfg, connect_timeout_s=timeout_s)))
        if found.error is not None and found.transport == "webrtc" and found.fallback is None:
            return Check("cloud", "warn", f"webrtc to {found.endpoint} fails ({found.error.code}: {found.error.message}); "
                         "turns fall back to the WebSocket, which connects", "check UDP to the internet, or set [cloud] transport = \"websocket\"")
        if found.error is not None:
            raise found.error
    except VoxError as err:
        fix = {
            "cloud-auth": "replace the API key credential (/etc/voxhome/credentials/cloud-api-key)",
            "cloud-no-key": "set [cloud] api_key = { credential = \"cloud-api-key\" }",
            "config-secret": "deliver the key with LoadCredential= (see voxhome.service)",
            "cloud-dns": "check network and DNS",
            "cloud-tls": "check the clock and the CA certificates",
        }.get(err.code, "check [cloud] url/base_url and the network")
        return Check("cloud", "fail", f"{err.code}: {err.message}", fix)
    return Check("cloud", "ok", f"{found.transport} to {found.endpoint}: session opened with the configured key")


def check_leds(settings: Settings) -> Check:
    """The configured status LED exists and this user may drive it."""
    from hal.leds import open_leds

    cfg = settings.leds
    if cfg.backend == "none":
        return Check("leds", "skip", "no status LED configured")
    try:
        open_leds(cfg)
    except VoxError as err:
        return Check("leds", "fail", err.message, "check [leds] name against `ls /sys/class/leds`")
    led = Path(cfg.sysfs_root) / cfg.name
    blocked = [f for f in ("brightness", "trigger") if not os.access(led / f, os.W_OK)]
    if blocked:
        return Check("leds", "warn", f"{led}: {', '.join(blocked)} not writable by this user",
                     "let group voxhome write them (a udev rule), or set [leds] backend = \"none\"")
    return Check("leds", "ok", f"{led} writable")


def check_clock(now: datetime.datetime) -> Check:
    if now < _EPOCH_SANE:
        return Check(
            "clock",
            "fail",
            f"clock says {now:%Y-%m-%d}; TLS will fail",
            "enable NTP: `timedatectl set-ntp true`",
        )
    return Check("clock", "ok", f"{now:%Y-%m-%d %H:%M} UTC")


def check_disk(path: Path, need_mb: int = OTA_FREE_MB) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free // (1 << 20)
    if free_mb < need_mb:
        return Check(
            "disk",
            "fail",
            f"{free_mb} MB free at {path}, an update needs {need_mb} MB",
            "free space or remove old slots",
        )
    return Check("disk", "ok", f"{free_mb} MB free at {path}")


def run_checks(
    settings: Settings,
    *,
    bundles: list[Path] | None = None,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> list[Check]:
    checks = [check_audio(settings), check_speaker(settings), check_frontend(settings), check_language(settings)]
    checks += check_models(find_bundles(settings) if bundles is None else bundles)
    checks += [
        check_broker(settings),
        check_cloud(settings),
        check_esphome(settings),
        check_leds(settings),
        check_clock(now()),
        check_disk(Path(settings.device.state_dir)),
    ]
    return checks
