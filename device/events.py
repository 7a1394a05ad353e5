"""The vocabulary: every value that flows through voxhome is one of these frozen dataclasses.

Two lanes (see STYLE.md): `AudioChunk` is the data lane and may be dropped (barge-in flushes it);
everything else is the control lane and is never dropped. Timestamps are audio time in
milliseconds since the stream started, never wall-clock time, so decisions are reproducible
from a file. Inside the process dispatch with `match`; serialize only at the edges (`to_json`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2
CHANNELS = 1


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A run of s16le samples and where it starts in audio time."""

    audio: bytes
    timestamp_ms: int = 0
    rate: int = SAMPLE_RATE
    width: int = SAMPLE_WIDTH
    channels: int = CHANNELS

    @property
    def samples(self) -> int:
        return len(self.audio) // (self.width * self.channels)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.samples / self.rate

    @property
    def end_ms(self) -> int:
        return self.timestamp_ms + round(self.duration_ms)


@dataclass(frozen=True, slots=True)
class AudioStop:
    """The source ended (end of a file); the run winds down."""

    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Detection:
    """A wake word was heard: which, how sure, when it was decided, and where its audio ended."""

    word: str
    score: float
    timestamp_ms: int
    """When the detector decided (it lags the word's end by ~100-300 ms)."""
    end_ms: int = -1
    """The detector's estimate of where the wake word's audio ends (audio time), so the command
    can start there; -1 (the default) means unknown and becomes `timestamp_ms`."""

    def __post_init__(self) -> None:
        if self.end_ms < 0:
            object.__setattr__(self, "end_ms", self.timestamp_ms)


@dataclass(frozen=True, slots=True)
class VoiceStarted:
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class VoiceStopped:
    """End of the spoken command; `audio` is the whole utterance, pre-roll included."""

    timestamp_ms: int
    start_ms: int
    audio: bytes
    reason: str = "silence"
    """'silence' (end of speech found), 'early' (ended at a pause, early endpointing) or
    'max_length' (cut at the cap)."""
    reading: Any = None
    """What the assistant already made of exactly this audio (the early reading), so it is not
    decoded twice; None: not read yet."""


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The speaker has been quiet `vad.early_ms` after speech: the command so far, to read while
    the normal end is still pending (once per pause)."""

    timestamp_ms: int
    """The end of speech before the pause."""
    decided_ms: int
    start_ms: int
    audio: bytes
    """The utterance up to `decided_ms`."""
    short: bool = False
    """Only `vad.quick_ms` of quiet yet: enough for a reading stable across two decodes."""


@dataclass(frozen=True, slots=True)
class SpeechSoFar:
    """The command so far, offered for reading while it is spoken (every `vad.redecode_ms` of
    audio, and at the first quiet window after speech); the reader may skip it when busy."""

    timestamp_ms: int
    """The end of the last speech so far."""
    decided_ms: int
    start_ms: int
    audio: bytes
    """The utterance up to `decided_ms`."""


@dataclass(frozen=True, slots=True)
class EndNow:
    """End the utterance at the pause that ended speech at `pause_ms` (ignored if speech resumed
    since): its reading is a complete command. Fed to the pipeline through `Service.inject`."""

    timestamp_ms: int
    pause_ms: int
    decided_ms: int
    reading: Any = None


@dataclass(frozen=True, slots=True)
class ListenTimeout:
    """Nobody spoke after the wake word."""

    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    timestamp_ms: int = 0
    confidence: float = 1.0
    command: str | None = None
    """The home grammar's best sentence for the same audio (grammar search while decoding), if any."""
    command_confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    call_id: str = ""
    source: str = "local"
    """'local' (our own understanding) or 'cloud' (the realtime model)."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    name: str
    status: str
    """'ok', 'unconfirmed', 'needs_confirmation', 'error'."""
    data: dict[str, Any]
    message: str = ""


@dataclass(frozen=True, slots=True)
class Say:
    """Speak a prompt (by id) or a sentence locally."""

    prompt: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Barge-in: stop playback now, drop queued audio, cancel the reply."""

    timestamp_ms: int
    reason: str = "wake"


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class Routed:
    """Where an utterance went and why (logged and printed; never the audio)."""

    way: str
    """'local', 'cloud' or 'drop'."""
    reason: str
    kind: str = "none"
    """What the local understanding made of it: 'tool', 'not_local', 'reject', 'none'."""
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class CloudReply:
    """A cloud turn finished: what the user said, what the model answered, what was heard."""

    status: str
    reply_text: str = ""
    user_text: str = ""
    played_ms: int = 0
    code: str | None = None
    first_audio_ms: int | None = None
    """Start of the cloud turn to its first reply sample at the speaker (None: no audio)."""


@dataclass(frozen=True, slots=True)
class SpeakerControl:
    """A command for the speaker itself: 'volume_step' (±n), 'volume_set' (0-10), 'mute'."""

    action: str
    value: int = 0


@dataclass(frozen=True, slots=True)
class Spoke:
    """The device said something: which prompt or text, how long it speaks, how long synthesis took."""

    prompt: str | None
    text: str | None
    duration_ms: int
    synth_ms: int


class PipelineStage(enum.StrEnum):
    WAKE_WORD = "wake_word"
    STT = "stt"
    INTENT = "intent"
    CLOUD = "cloud"
    TTS = "tts"


@dataclass(frozen=True, slots=True)
class StartListening:
    """Listen for a command without a wake word: a follow-up or a yes/no after a question."""

    timestamp_ms: int
    timeout_ms: int
    """Nobody speaks within this → ListenTimeout."""
    reason: str = "followup"


@dataclass(frozen=True, slots=True)
class SpeechProbability:
    """Silero VAD's verdict on one window of audio (the VAD runs only after a wake word)."""

    timestamp_ms: int
    """Where the window starts."""
    duration_ms: int
    probability: float

    @property
    def end_ms(self) -> int:
        return self.timestamp_ms + self.duration_ms


def to_json(event: object) -> dict[str, Any]:
    """The edge serialization: a `type` field plus the event's fields; audio is summarised."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError(f"not an event: {event!r}")
    out: dict[str, Any] = {"type": _TYPE_NAMES.get(type(event), type(event).__name__)}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, bytes):
            out[f"{f.name}_ms"] = round(1000 * len(value) / (SAMPLE_RATE * SAMPLE_WIDTH))
            continue
        if f.name == "reading":  # the recognizer's own objects: only whether there is one
            out["read_early"] = value is not None
            continue
        out[f.name] = value
    return out


_TYPE_NAMES: dict[type, str] = {
    Detection: "wake",
    VoiceStarted: "speech_start",
    VoiceStopped: "speech_end",
    SpeechPaused: "speech_pause",
    SpeechSoFar: "speech_so_far",
    EndNow: "end_now",
    ListenTimeout: "timeout",
    AudioStop: "audio_stop",
    Transcript: "transcript",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
    Say: "say",
    Interrupted: "interrupted",
    Error: "error",
    SpeechProbability: "vad",
    StartListening: "listen",
    Routed: "route",
    CloudReply: "cloud_reply",
    SpeakerControl: "speaker",
    Spoke: "spoke",
}
