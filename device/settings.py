"""Settings: nested frozen dataclasses built once from one TOML file.

Every section is a frozen dataclass whose fields carry defaults; `load_settings()` walks the
dataclass types to validate the TOML, so an unknown key, a wrong type or an impossible value fails
at start with one message naming the dotted key (``wake.words[1].threshold``).
Nothing else in the program reads the file or a global: `device.__main__` builds `Settings` once
and passes the parts down.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from device.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/voxhome/config.toml")


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret read from a file or an environment variable at the moment it is needed.

    The value itself never lives in the settings object, so settings can be logged or printed.
    """

    file: str | None = None
    env: str | None = None
    credential: str | None = None
    """A systemd credential name (LoadCredential=NAME:...): read from $CREDENTIALS_DIRECTORY/NAME."""

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.file, self.env, self.credential)) != 1:
            raise ValueError("give exactly one of 'file' or 'env' or 'credential'")
        if self.credential is not None and (not self.credential or "/" in self.credential):
            raise ValueError("'credential' must be a plain name, e.g. 'mqtt-password'")

    def reveal(self) -> str:
        """Return the secret; raise ConfigError (without the value) if it can't be read."""
        if self.credential is not None:
            directory = os.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(
                    "config-secret",
                    f"credential {self.credential!r} needs $CREDENTIALS_DIRECTORY (run under systemd)",
                )
            return Secret(file=str(Path(directory) / self.credential)).reveal()
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError("config-secret", f"environment variable {self.env} is not set")
            return value.strip()
        assert self.file is not None
        try:
            return Path(self.file).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(
                "config-secret", f"can't read secret file {self.file}: {err.strerror}"
            ) from None

    def __repr__(self) -> str:
        if self.credential is not None:
            return f"Secret(credential={self.credential!r})"
        where = f"file={self.file!r}" if self.file else f"env={self.env!r}"
        return f"Secret({where})"


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    id: str = "voxhome"
    """Stable device id: MQTT client id and topic prefix (voxhome/<id>/...)."""
    name: str = "voxhome speaker"
    state_dir: str = "/var/lib/voxhome"
    """Model slots, OTA state and caches live here (the unit's only writable path)."""
    area: str | None = None
    """The room the speaker stands in: 'turn on the lights' and 'in here' mean this area."""

    def __post_init__(self) -> None:
        if not self.id or any(c in self.id for c in "/#+ ") or len(self.id) > 64:
            raise ValueError("must be 1-64 characters without '/', '#', '+' or spaces")


@dataclass(frozen=True, slots=True)
class MicSettings:
    backend: Literal["alsa", "file", "null"] = "alsa"
    device: str = "default"
    """ALSA PCM name (e.g. 'default', 'plughw:1,0')."""
    file: str | None = None
    """Audio file to read when backend = 'file'."""
    period_frames: int = 160
    """ALSA period in frames (160 = 10 ms at 16 kHz)."""
    buffer_periods: int = 8
    reopen_backoff_s: float = 0.5
    reopen_backoff_max_s: float = 10.0

    def __post_init__(self) -> None:
        if not 16 <= self.period_frames <= 16000:
            raise ValueError("period_frames must be between 16 and 16000")
        if not 2 <= self.buffer_periods <= 64:
            raise ValueError("buffer_periods must be between 2 and 64")
        if self.reopen_backoff_s <= 0 or self.reopen_backoff_max_s < self.reopen_backoff_s:
            raise ValueError("reopen backoff must be > 0 and max >= initial")


@dataclass(frozen=True, slots=True)
class SpeakerSettings:
    backend: Literal["alsa", "null", "file"] = "alsa"
    device: str = "default"
    file: str | None = None
    """WAV file to write when backend = 'file' (tests, demo)."""
    volume: float = 0.8
    """Linear output gain, 0..1."""
    fade_ms: int = 8
    """Fade in/out at stream start, stop and volume changes, so playback never clicks."""
    duck_volume: float = 0.25
    """Gain relative to `volume` while ducked (the user is talking over the device)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.volume <= 1.0:
            raise ValueError("volume must be between 0 and 1")
        if not 0 <= self.fade_ms <= 100:
            raise ValueError("fade_ms must be between 0 and 100")
        if not 0.0 <= self.duck_volume <= 1.0:
            raise ValueError("duck_volume must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class AudioSettings:
    mic: MicSettings = field(default_factory=MicSettings)
    speaker: SpeakerSettings = field(default_factory=SpeakerSettings)


@dataclass(frozen=True, slots=True)
class WakeWordSettings:
    model: str = "okay_nabu"
    """A built-in name (okay_nabu, hey_jarvis, alexa, hey_mycroft), 'oww:<name>' for the
    openWakeWord model of that name, or a path to a .json manifest / .tflite / .onnx file."""
    threshold: float | None = None
    """Probability cut-off; None takes the model manifest's."""
    window: int | None = None
    """Sliding window (feature steps) averaged before the threshold; None takes the manifest's."""
    phrase: str | None = None
    """A wake phrase written as text ("hey computer"), enrolled from TTS with no training
    (models/wake_phrase.py); `model` is then unused and `threshold` is the cosine similarity."""

    def __post_init__(self) -> None:
        if self.phrase is not None and not (any(c.isalnum() for c in self.phrase) and len(self.phrase) <= 64):
            raise ValueError("phrase must be 1-64 characters with at least one word")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if self.window is not None and not 1 <= self.window <= 100:
            raise ValueError("window must be between 1 and 100")


@dataclass(frozen=True, slots=True)
class WakeSettings:
    words: tuple[WakeWordSettings, ...] = (WakeWordSettings(),)
    refractory_s: float = 2.0
    """After a detection, the same word is ignored for this long (audio time)."""
    two_stage: bool = True
    """Words with a calibrated second stage (models/wake_confirm.py) wake on a lower first-stage
    score when openWakeWord confirms it; false keeps the first stage alone at its cutoff."""
    verify: bool = False
    """Check each detection with Whisper on the audio before it (models/wake_verify.py) and drop
    the ones that don't say the phrase; measured by `voxhome bench wake-verify`."""

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("at least one wake word is needed")
        if not 0.0 <= self.refractory_s <= 60.0:
            raise ValueError("refractory_s must be between 0 and 60")


@dataclass(frozen=True, slots=True)
class VadSettings:
    threshold: float = 0.5
    """Silero speech probability at which a window counts as speech."""
    preroll_ms: int = 500
    """Audio kept from before the detection: the VAD looks in it for where the wake word ended
    (the command starts there, device/listening/wakecut.py), so a first syllable spoken before
    the detection fired is kept and the word itself is not."""
    speech_start_ms: int = 60
    """Speech needed before the command counts as started."""
    end_silence_ms: int = 500
    """Silence after speech that ends the command."""
    early_ms: int = 150
    """Silence after speech at which the assistant reads the command so far (a `SpeechPaused`):
    a complete home command that no longer sentence could change ends here instead of at
    `end_silence_ms` (device/assistant.py, early endpointing). 0 turns it off."""
    quick_ms: int = 80
    """A shorter pause that is enough when the reading of the audio up to it is the same command
    as the reading before it (stable across two decodes); 0: only `early_ms` counts."""
    redecode_ms: int = 120
    """While the user speaks (early endpointing on), the utterance so far is read again every this
    much audio, one reading at a time, so the pause finds its reading (nearly) ready; 0: read only
    at the pause."""
    max_command_ms: int = 10000
    start_timeout_ms: int = 5000
    """Nobody speaks within this after the wake word → timeout."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        for name in ("preroll_ms", "speech_start_ms", "end_silence_ms", "early_ms", "quick_ms", "redecode_ms"):
            if not 0 <= getattr(self, name) <= 5000:
                raise ValueError(f"{name} must be between 0 and 5000")
        if not 1000 <= self.max_command_ms <= 60000:
            raise ValueError("max_command_ms must be between 1000 and 60000")
        if not 500 <= self.start_timeout_ms <= 60000:
            raise ValueError("start_timeout_ms must be between 500 and 60000")


@dataclass(frozen=True, slots=True)
class AsrSettings:
    bundle: str | None = None
    """Directory of the speech-model bundle; None uses the active OTA slot, then the build cache."""
    threads: int = 1
    model: Literal["tiny.en", "base"] | None = None
    """Which Whisper the build cache holds: 'tiny.en' (English only, fastest) or 'base'
    (multilingual, ~2.3x the compute); None = tiny.en for English, base for any other language."""

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 16:
            raise ValueError("threads must be between 1 and 16")

    def model_for(self, language: str) -> Literal["tiny.en", "base"]:
        if self.model is not None:
            return self.model
        return "tiny.en" if _is_english(language) else "base"


def _is_english(language: str) -> bool:
    """'en', 'en-GB', 'en_us': Home Assistant's codes name regional variants of one language."""
    return language.replace("_", "-").split("-")[0].lower() == "en"


@dataclass(frozen=True, slots=True)
class IntentSettings:
    language: str = "en"
    """Sentences and answers come from home-assistant-intents for this language ('en', 'de', …)."""
    custom_sentences: str | None = None
    """A directory of the user's own hassil sentence files (like Home Assistant's custom_sentences)."""


@dataclass(frozen=True, slots=True)
class MqttSettings:
    enabled: bool = True
    host: str = "localhost"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: Secret | None = None
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = 30
    command_timeout_s: float = 3.0
    """How long a command may wait for the broker and for the state topic to confirm it."""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    risky: tuple[str, ...] = ()
    """Extra entity ids that need a spoken confirmation (locks and garage covers always do)."""

    def __post_init__(self) -> None:
        if not self.host.strip() or any(c.isspace() for c in self.host):
            raise ValueError("host must be a host name or address, e.g. 'localhost' or '192.168.1.10'")
        if not 1 <= self.port <= 65535:
            raise ValueError("port must be between 1 and 65535")
        if not 5 <= self.keepalive_s <= 3600:
            raise ValueError("keepalive_s must be between 5 and 3600 seconds")
        if self.tls:
            # A missing certificate is a config mistake, found here rather than as an SSL traceback.
            for name in ("ca_file", "cert_file", "key_file"):
                value = getattr(self, name)
                if value is not None and not os.path.isfile(value):
                    raise ValueError(f"{name} {value!r} does not exist or is not a file")
            if self.key_file is not None and self.cert_file is None:
                raise ValueError("key_file needs cert_file")
        if not 0.1 <= self.command_timeout_s <= 60:
            raise ValueError("command_timeout_s must be between 0.1 and 60")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_min_s must be > 0 and reconnect_max_s >= reconnect_min_s")


_COMPONENTS = ("light", "switch", "lock", "cover", "climate", "fan", "scene", "sensor", "binary_sensor", "media_player")


@dataclass(frozen=True, slots=True)
class HomeDeviceSettings:
    """A device listed in the config, for brokers without Home Assistant discovery.

    `config` takes the same keys as a discovery payload would (full or abbreviated), as a JSON
    object in a string, for anything beyond the common fields below.
    """

    id: str = ""
    """Entity id, '<component>.<name>' (e.g. 'light.porch')."""
    name: str = ""
    area: str | None = None
    aliases: tuple[str, ...] = ()
    command_topic: str | None = None
    state_topic: str | None = None
    availability_topic: str | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    schema: Literal["default", "json"] = "default"
    brightness_scale: int = 255
    device_class: str | None = None
    config: str | None = None

    def __post_init__(self) -> None:
        component, _, rest = self.id.partition(".")
        if component not in _COMPONENTS or not rest:
            raise ValueError(f"id must be '<component>.<name>' with component one of {', '.join(_COMPONENTS)}")
        if not self.name:
            raise ValueError("name is required")
        if not 1 <= self.brightness_scale <= 65535:
            raise ValueError("brightness_scale must be between 1 and 65535")


@dataclass(frozen=True, slots=True)
class HomeEntitySettings:
    """Extra names and an area for an entity that discovery announced."""

    id: str = ""
    aliases: tuple[str, ...] = ()
    area: str | None = None

    def __post_init__(self) -> None:
        if "." not in self.id:
            raise ValueError("id must be an entity id like 'light.kitchen'")


@dataclass(frozen=True, slots=True)
class HomeSettings:
    devices: tuple[HomeDeviceSettings, ...] = ()
    """[[home.devices]]: devices not announced by discovery."""
    entities: tuple[HomeEntitySettings, ...] = ()
    """[[home.entities]]: aliases and areas for discovered entities."""
    discovery: bool = True
    """Subscribe to Home Assistant discovery (mqtt.discovery_prefix)."""


@dataclass(frozen=True, slots=True)
class CloudSettings:
    enabled: bool = True
    """Privacy switch: false keeps every utterance on the device."""
    base_url: str = "https://api.openai.com/v1"
    url: str | None = None
    """Explicit WebSocket URL, overriding base_url (gateways, tests)."""
    model: str = "gpt-realtime"
    dialect: Literal["ga", "beta"] = "ga"
    api_key: Secret | None = None
    """Falls back to the OPENAI_API_KEY environment variable when unset."""
    transport: Literal["websocket", "webrtc"] = "websocket"
    """webrtc: Opus audio over RTP and events on the `oai-events` data channel (falls back to the
    WebSocket for a turn it can't carry)."""
    calls_url: str | None = None
    """Explicit WebRTC calls endpoint (the SDP offer goes here), overriding base_url + /realtime/calls."""
    client_secret: Secret | None = None
    """A client secret (ek_…) minted elsewhere; unset: minted per session from api_key (WebRTC)."""
    upload_speed: float = 8.0
    """WebRTC: the utterance goes out on the Opus track this many times faster than it was spoken
    (it is all buffered when the turn is routed to the cloud); 1 paces it in real time."""
    instructions: str = "You are a helpful voice assistant in a smart speaker. Answer briefly."
    voice: str = "marin"
    speed: float = 1.0
    language: str = "en"
    turn_detection: Literal["client", "server_vad"] = "client"
    followup_s: float = 5.0
    idle_close_s: float = 60.0
    connect_timeout_s: float = 5.0
    response_timeout_s: float = 10.0
    """Longest silence from the server while a reply is expected before the turn fails (the
    inactivity deadline: events that don't carry this turn forward don't count as activity)."""
    turn_timeout_s: float = 180.0
    """Longest a whole cloud turn may take, tool calls and the reply's play-out included."""
    max_reply_s: float = 120.0
    """Reply audio one turn may receive; past it the reply is cut and the speaker says so."""
    max_reply_bytes: int = 8 << 20
    """Decoded reply audio bytes one turn may receive, whichever response they claim to be for."""
    max_buffered_s: float = 30.0
    """Reply audio queued ahead of the speaker: past it the client stops reading (the server is
    paced by the transport's flow control); a speaker that doesn't drain it ends the turn."""
    max_frame_bytes: int = 1 << 20
    """Server frames larger than this are dropped unparsed (real events are a few KiB)."""
    tool_timeout_s: float = 5.0
    retries: int = 3
    """Reconnect attempts (backoff with jitter) before a turn gives up with a spoken prompt."""
    jitter_ms: int = 60
    """Reply audio held before playback starts, so a slow link doesn't open with a gap."""
    local_min_confidence: float = 0.6
    """Local commands understood with less confidence than this go to the cloud instead."""

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 10:
            raise ValueError("retries must be between 0 and 10")
        if not 0 <= self.jitter_ms <= 1000:
            raise ValueError("jitter_ms must be between 0 and 1000")
        if not 0.0 <= self.local_min_confidence <= 1.0:
            raise ValueError("local_min_confidence must be between 0 and 1")
        if not 0.25 <= self.speed <= 1.5:
            raise ValueError("speed must be between 0.25 and 1.5")
        if not 1.0 <= self.upload_speed <= 32.0:
            raise ValueError("upload_speed must be between 1 and 32")
        if not 0 <= self.followup_s <= 30:
            raise ValueError("followup_s must be between 0 and 30")
        if not (0 < self.response_timeout_s <= self.turn_timeout_s and 0 < self.max_buffered_s <= self.max_reply_s):
            raise ValueError("need 0 < response_timeout_s <= turn_timeout_s and 0 < max_buffered_s <= max_reply_s")
        if not (self.max_reply_bytes > 0 and 4096 <= self.max_frame_bytes <= 64 << 20):
            raise ValueError("max_reply_bytes must be > 0 and max_frame_bytes between 4096 and 64 MiB")


@dataclass(frozen=True, slots=True)
class OtaSettings:
    repository_url: str | None = None
    """Base URL of the TUF repository (metadata/ and targets/ below it)."""
    check_interval_s: int = 21600
    trial_attempts: int = 3
    """Boots a new model may take to prove itself before an automatic rollback."""
    stable_s: int = 600
    """Normal running after a switch before the new model is marked good."""
    trusted_root: str = "/usr/share/voxhome/ota/root.json"
    """TUF root metadata shipped with the firmware (the bootstrap of trust)."""
    kinds: tuple[str, ...] = ("wake", "vad", "asr", "prompts", "tts")
    """Model kinds this device takes updates for."""
    health_timeout_s: float = 120.0
    download_timeout_s: float = 20.0
    disk_margin_mb: int = 32
    """Free space to leave on the state filesystem beyond the download and the unpacked bundle."""

    def __post_init__(self) -> None:
        if not 1 <= self.trial_attempts <= 10:
            raise ValueError("trial_attempts must be between 1 and 10")
        if not self.check_interval_s >= 60:
            raise ValueError("check_interval_s must be at least 60")
        if self.health_timeout_s <= 0 or self.download_timeout_s <= 0 or self.disk_margin_mb < 0:
            raise ValueError("timeouts must be > 0 and disk_margin_mb >= 0")


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    prompts: str | None = None
    """Directory of the prompt bundle; None uses the active OTA slot, then the build cache."""
    engine: Literal["auto", "hibari", "piper", "espeak-ng", "flite", "festival", "none"] = "auto"
    """Who speaks sentences: 'auto' (the language's best packaged voice: hibari for en-us — bench
    tts: first sample 36-83 ms, WER 0.08 against espeak-ng's 0.23, +60 MB), a neural voice from
    its tts bundle (hibari, piper), a Debian engine, or 'none' (prompts only).
    A neural voice whose bundle is missing or broken falls back to espeak-ng with a warning."""
    voice: str = ""
    """The engine's voice: hibari 'heart', piper 'joe', an espeak-ng voice ('en-gb', 'en-us+f3'),
    flite 'slt'/'rms'/'kal'/'awb', a festival voice; '' = the engine's (language's) default."""
    language: str = "en-us"
    """Language of the spoken answers: 'en-us' or 'en-gb' (espeak-ng: no offline British neural voice)."""
    speed: float = 1.0
    """Speaking rate, 0.5 (slow) to 2.0 (fast)."""
    tts_bundle: str | None = None
    """Directory of the voice bundle; None uses the active OTA slot (if it holds this voice), then the build cache."""
    muted: bool = False
    aec: bool = True

    def __post_init__(self) -> None:
        from device.voice.voices import resolve

        resolve(self.engine, self.voice, self.language)
        if not 0.5 <= self.speed <= 2.0:
            raise ValueError("speed must be between 0.5 and 2.0")


@dataclass(frozen=True, slots=True)
class LedSettings:
    backend: Literal["none", "sysfs"] = "none"
    """'sysfs': an LED of the Linux LED class (/sys/class/leds/<name>); 'none': no LED."""
    name: str = "led0"
    sysfs_root: str = "/sys/class/leds"

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError("name must be an LED's directory name, e.g. 'led0'")


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    interval_s: int = 60
    prometheus_file: str | None = None


@dataclass(frozen=True, slots=True)
class EsphomeSettings:
    """Home Assistant's voice satellite over the ESPHome native API (device/satellite/)."""

    enabled: bool = False
    port: int = 6053
    encryption_key: str | None = None
    """Noise PSK, base64 of 32 bytes (`openssl rand -base64 32`); unset = plaintext API."""
    name: str = ""
    """Node name HA shows; '' = the device id."""
    mode: Literal["local-first", "ha"] = "local-first"
    """'local-first': the device's own understanding acts, HA's pipeline gets the rest;
    'ha': every utterance goes to HA's pipeline."""

    def __post_init__(self) -> None:
        import binascii

        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 (any free port) and 65535")
        if self.encryption_key is not None:
            try:
                raw = binascii.a2b_base64(self.encryption_key.strip().encode("ascii"), strict_mode=True)
            except (ValueError, UnicodeEncodeError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("encryption_key must be base64 of 32 bytes (openssl rand -base64 32)")


@dataclass(frozen=True, slots=True)
class WyomingSettings:
    """The older Wyoming satellite protocol (device/satellite/wyoming_sat.py), zeroconf _wyoming._tcp."""

    enabled: bool = False
    port: int = 10700
    name: str = ""
    """Satellite name HA shows; '' = the device id."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 (any free port) and 65535")


@dataclass(frozen=True, slots=True)
class Settings:
    device: DeviceSettings = field(default_factory=DeviceSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    wake: WakeSettings = field(default_factory=WakeSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    intent: IntentSettings = field(default_factory=IntentSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    home: HomeSettings = field(default_factory=HomeSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    ota: OtaSettings = field(default_factory=OtaSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    leds: LedSettings = field(default_factory=LedSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    esphome: EsphomeSettings = field(default_factory=EsphomeSettings)
    wyoming: WyomingSettings = field(default_factory=WyomingSettings)

    def __post_init__(self) -> None:
        if self.asr.model == "tiny.en" and not _is_english(self.intent.language):
            raise ValueError(
                f"asr.model 'tiny.en' understands English only, but intent.language is {self.intent.language!r}: "
                "set asr.model = 'base' (multilingual) or leave it out"
            )


T = TypeVar("T")


def load_settings(path: Path | str | None, *, required: bool = False) -> Settings:
    """Read and validate the TOML file at `path`.

    With `required=False` a missing default file gives the built-in defaults (a fresh board that
    has no config yet); a path the user named explicitly must exist.
    """
    if path is None:
        path, required = DEFAULT_CONFIG_PATH, False
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError("config-missing", f"config file {path} does not exist") from None
        return Settings()
    except OSError as err:
        raise ConfigError("config-unreadable", f"can't read config file {path}: {err.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except ValueError as err:  # TOMLDecodeError, UnicodeDecodeError, an integer of > 4300 digits
        raise ConfigError("config-syntax", f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError("config-syntax", f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    return settings_from_dict(data, source=str(path))


def settings_from_dict(data: Mapping[str, Any], *, source: str = "config") -> Settings:
    return build(Settings, data, prefix="", source=source)


def replace_path(settings: T, dotted: str, value: Any) -> T:
    """Return a copy of `settings` with one nested field replaced (CLI overrides)."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(settings, **{head: value})  # type: ignore[type-var]
    inner = getattr(settings, head)
    return dataclasses.replace(settings, **{head: replace_path(inner, rest, value)})  # type: ignore[type-var]


def build(cls: type[T], data: Any, *, prefix: str, source: str) -> T:
    """Build dataclass `cls` from a TOML table, naming the dotted key in every error."""
    where = prefix or "(top level)"
    if not isinstance(data, Mapping):
        raise ConfigError("config-type", f"{source}: {where} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(
                "config-unknown-key", f"{source}: unknown key {_show(_join(prefix, key))} (known: {known})"
            )
    kwargs = {
        key: _convert(hints[key], value, prefix=_join(prefix, key), source=source)
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ConfigError("config-value", f"{source}: {where}: {err}") from None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _convert(tp: Any, value: Any, *, prefix: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported settings type {tp}")
        return _convert(members[0], value, prefix=prefix, source=source)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, prefix=prefix, source=source)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError("config-value", f"{source}: {prefix} must be one of {allowed}, not {_show(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError("config-type", f"{source}: {prefix} must be a list")
        item_type = args[0]
        return tuple(
            _convert(item_type, item, prefix=f"{prefix}[{i}]", source=source)
            for i, item in enumerate(value)
        )
    if tp is float:
        # TOML writes 2 and 2.0 differently; both are a fine number of seconds.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # nan passes every range check below (all comparisons are false), and an integer
            # too large for a float would raise OverflowError: both are refused here.
            number = float(value) if isinstance(value, float) or abs(value) < 1 << 1000 else math.inf
            if math.isfinite(number):
                return number
            raise ConfigError("config-value", f"{source}: {prefix} must be a finite number, not {_show(value)}")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"unsupported settings type {tp}")
    raise ConfigError(
        "config-type", f"{source}: {prefix} must be {_type_name(tp)}, not {type(value).__name__} {_show(value)}"
    )


def _show(value: Any) -> str:
    """A value in a one-line message: repr (no raw newlines), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(tp: Any) -> str:
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))
