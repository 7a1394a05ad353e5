"""The realtime API's wire protocol as typed values: pure, no sockets, no clock.

One internal vocabulary (GA names) and one place where the two wire dialects meet:
`client_to_wire()` builds the outbound JSON for GA or beta, `parse_server_event()` renames beta
server events to GA (`BETA_TO_GA`) before typing them, and `server_to_dialect()` is the inverse the
fake server uses. Unknown server event types are returned as `Other` and ignored upstream: the API
adds event types regularly, and a new one must never crash the device.

The parser is total over untrusted input: any frame (oversized, deeply nested, wrongly typed) is
either typed events or CloudError('cloud-bad-event'), never another exception (fuzzed in the tests).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from device.errors import CloudError

log = logging.getLogger(__name__)

Dialect = Literal["ga", "beta"]
PCM_RATE = 24000
BYTES_PER_MS = PCM_RATE * 2 // 1000
MAX_FRAME_BYTES = 1 << 20
"""Frames above this are dropped unparsed: the largest real event (a session with its tools, a
response.done with its transcript) is a few tens of KiB; audio deltas are a few KiB."""

BETA_TO_GA: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}
GA_TO_BETA: dict[str, str] = {ga: beta for beta, ga in BETA_TO_GA.items()}
_CONTENT_GA = {"audio": "output_audio", "text": "output_text"}
_CONTENT_BETA = {ga: beta for beta, ga in _CONTENT_GA.items()}


# ---------------------------------------------------------------- client events (outbound)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What the device asks of a session; rendered nested (GA) or flat (beta)."""

    instructions: str
    voice: str
    speed: float = 1.0
    language: str | None = "en"
    turn_detection: Literal["client", "server_vad"] = "client"
    tools: tuple[dict[str, Any], ...] = ()
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    noise_reduction: str | None = "far_field"


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    config: SessionConfig


@dataclass(frozen=True, slots=True)
class AudioAppend:
    audio: bytes
    """PCM16 24 kHz mono."""


@dataclass(frozen=True, slots=True)
class AudioCommit:
    pass


@dataclass(frozen=True, slots=True)
class AudioClear:
    pass


@dataclass(frozen=True, slots=True)
class OutputAudioClear:
    """WebRTC only: drop the server's unplayed output audio (barge-in)."""


@dataclass(frozen=True, slots=True)
class ResponseCreate:
    text_only: bool = False
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class OutOfBandResponse:
    """A text side task outside the conversation (classification, a summary): conversation 'none',
    only the listed items as context, no tools, correlated by `metadata`."""

    instructions: str
    item_ids: tuple[str, ...]
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class ResponseCancel:
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class ItemTruncate:
    item_id: str
    audio_end_ms: int
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class FunctionCallOutput:
    call_id: str
    output: str
    """A JSON string, as the model reads it."""


@dataclass(frozen=True, slots=True)
class UserText:
    text: str


@dataclass(frozen=True, slots=True)
class HistoryText:
    """Earlier conversation replayed as text into a new session (audio items can't be created)."""

    role: Literal["user", "assistant"]
    text: str


ClientEvent = (
    SessionUpdate | AudioAppend | AudioCommit | AudioClear | OutputAudioClear | ResponseCreate | OutOfBandResponse | ResponseCancel
    | ItemTruncate | FunctionCallOutput | UserText | HistoryText
)


def session_payload(config: SessionConfig, dialect: Dialect) -> dict[str, Any]:
    turn: dict[str, Any] | None = None
    if config.turn_detection == "server_vad":
        turn = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                "silence_duration_ms": 500, "create_response": True, "interrupt_response": True}
    transcription: dict[str, Any] | None = None
    if config.transcription_model:
        transcription = {"model": config.transcription_model}
        if config.language:
            transcription["language"] = config.language
    noise = {"type": config.noise_reduction} if config.noise_reduction else None
    tools = [dict(t) for t in config.tools]
    if dialect == "beta":
        return {
            "modalities": ["text", "audio"], "instructions": config.instructions, "voice": config.voice,
            "input_audio_format": "pcm16", "output_audio_format": "pcm16",
            "input_audio_transcription": transcription, "input_audio_noise_reduction": noise,
            "turn_detection": turn, "tools": tools, "tool_choice": "auto", "speed": config.speed,
        }
    fmt = {"type": "audio/pcm", "rate": PCM_RATE}
    return {
        # 'type' is required on every GA update: without it the whole update is dropped.
        "type": "realtime", "output_modalities": ["audio"], "instructions": config.instructions,
        "audio": {
            "input": {"format": fmt, "noise_reduction": noise, "transcription": transcription,
                      "turn_detection": turn},
            "output": {"format": fmt, "voice": config.voice, "speed": config.speed},
        },
        "tools": tools, "tool_choice": "auto",
    }


def client_to_wire(event: ClientEvent, dialect: Dialect, event_id: str | None = None) -> dict[str, Any]:
    """The JSON object for one client event in the chosen dialect (client names are shared)."""
    out: dict[str, Any]
    match event:
        case SessionUpdate(config):
            out = {"type": "session.update", "session": session_payload(config, dialect)}
        case AudioAppend(audio):
            # No event_id on appends: they are never answered, and ids would cost bytes per 100 ms.
            return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode("ascii")}
        case AudioCommit():
            out = {"type": "input_audio_buffer.commit"}
        case AudioClear():
            out = {"type": "input_audio_buffer.clear"}
        case OutputAudioClear():
            out = {"type": "output_audio_buffer.clear"}
        case ResponseCreate(text_only, metadata):
            out = {"type": "response.create"}
            response: dict[str, Any] = {}
            if text_only:
                response["modalities" if dialect == "beta" else "output_modalities"] = ["text"]
            if metadata:
                response["metadata"] = dict(metadata)
            if response:
                out["response"] = response
        case OutOfBandResponse(instructions, item_ids, metadata):
            out = {"type": "response.create", "response": {
                "conversation": "none", "metadata": dict(metadata), "instructions": instructions,
                "tools": [], "tool_choice": "none",
                "input": [{"type": "item_reference", "id": item_id} for item_id in item_ids],
                "modalities" if dialect == "beta" else "output_modalities": ["text"],
            }}
        case ResponseCancel(response_id):
            out = {"type": "response.cancel"}
            if response_id:
                out["response_id"] = response_id
        case ItemTruncate(item_id, audio_end_ms, content_index):
            out = {"type": "conversation.item.truncate", "item_id": item_id,
                   "content_index": content_index, "audio_end_ms": audio_end_ms}
        case FunctionCallOutput(call_id, output):
            out = {"type": "conversation.item.create",
                   "item": {"type": "function_call_output", "call_id": call_id, "output": output}}
        case UserText(text) | HistoryText("user", text):
            out = {"type": "conversation.item.create",
                   "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}
        case HistoryText(_, text):
            part = {"type": "text" if dialect == "beta" else "output_text", "text": text}
            out = {"type": "conversation.item.create",
                   "item": {"type": "message", "role": "assistant", "content": [part]}}
    if event_id is not None:
        out["event_id"] = event_id
    return out


# ---------------------------------------------------------------- server events (inbound)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    type: str
    role: str | None = None
    status: str | None = None
    name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    transcript: str | None = None


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str | None
    expires_at: int | None
    shape: Dialect
    """Which dialect the session object looks like (a sanity check on the configured one)."""


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session_id: str | None


@dataclass(frozen=True, slots=True)
class ServerError:
    type: str
    code: str | None
    message: str
    param: str | None = None
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str
    conversation_id: str | None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str
    reason: str | None = None
    error_code: str | None = None
    output: tuple[Item, ...] = ()
    usage: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OutputItemAdded:
    response_id: str
    item: Item


@dataclass(frozen=True, slots=True)
class OutputItemDone:
    response_id: str
    item: Item


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class FunctionArgumentsDone:
    response_id: str
    item_id: str | None
    call_id: str
    name: str | None
    """GA only; beta leaves it out (take it from OutputItemAdded)."""
    arguments: str | None
    """None when the server sent something other than a string: that call alone fails."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int
    item_id: str | None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int
    item_id: str | None


@dataclass(frozen=True, slots=True)
class Committed:
    item_id: str


@dataclass(frozen=True, slots=True)
class ItemAdded:
    item: Item


@dataclass(frozen=True, slots=True)
class ItemDone:
    item: Item


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class InputTranscript:
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class Other:
    """Any event the device does not act on (content parts, rate limits, new types)."""

    type: str


ServerEvent = (
    SessionCreated | SessionUpdated | ServerError | ResponseCreated | ResponseDone | OutputItemAdded
    | OutputItemDone | AudioDelta | AudioDone | TranscriptDelta | TextDelta | FunctionArgumentsDone
    | SpeechStarted | SpeechStopped | Committed | ItemAdded | ItemDone | ItemTruncated
    | InputTranscript | Other
)


def _bad(kind: str, raw: Any, why: str) -> CloudError:
    return CloudError("cloud-bad-event", f"bad {kind[:60]} event ({why}): {_snippet(raw)}")


def _snippet(raw: Any) -> str:
    if isinstance(raw, str):
        return raw[:120]
    try:
        return json.dumps(raw, default=str)[:120]
    except (RecursionError, ValueError):  # a hostile value can't break the error message either
        return f"<{type(raw).__name__}>"


def _list(d: dict[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    return value if isinstance(value, list) else []


def _str(d: dict[str, Any], key: str, kind: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise _bad(kind, d, f"'{key}' must be a string")
    return value


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None


def _int(d: dict[str, Any], key: str, kind: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(kind, d, f"'{key}' must be an integer")
    return value


def _item(raw: Any, kind: str) -> Item:
    if not isinstance(raw, dict):
        raise _bad(kind, raw, "'item' must be an object")
    transcript = None
    for part in _list(raw, "content"):
        if isinstance(part, dict) and part.get("type") in ("audio", "output_audio"):
            transcript = part.get("transcript") if isinstance(part.get("transcript"), str) else None
        elif isinstance(part, dict) and part.get("type") in ("text", "output_text"):
            transcript = part.get("text") if isinstance(part.get("text"), str) else None
    return Item(
        id=_str(raw, "id", kind), type=_str(raw, "type", kind), role=_opt_str(raw, "role"),
        status=_opt_str(raw, "status"), name=_opt_str(raw, "name"), call_id=_opt_str(raw, "call_id"),
        arguments=_opt_str(raw, "arguments"), transcript=transcript,
    )


def decode_json(text: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    if len(text) > max_bytes:
        raise CloudError("cloud-bad-event", f"dropped a {len(text)}-byte frame (over {max_bytes} bytes)")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise _bad("non-JSON", text if isinstance(text, str) else repr(text[:120]), "not JSON") from None
    except RecursionError:  # nesting deeper than the parser's stack: hostile, never real
        raise CloudError("cloud-bad-event", "dropped a frame nested too deeply to parse") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise _bad("untyped", text if isinstance(text, str) else repr(text[:120]), "no string 'type'")
    return data


def parse_server_event(text: str | bytes, dialect: Dialect, max_bytes: int = MAX_FRAME_BYTES) -> list[ServerEvent]:
    """Decode one frame into typed events (beta `conversation.item.created` → added + done).

    Raises CloudError('cloud-bad-event') for an oversized frame, malformed JSON or a known event
    with bad fields.
    """
    return parse_server_dict(decode_json(text, max_bytes), dialect)


def parse_server_dict(data: dict[str, Any], dialect: Dialect) -> list[ServerEvent]:
    kind: str = data["type"]
    if len(kind) > 200:
        raise _bad("overlong", kind, "event type of over 200 characters")
    if dialect == "beta":
        kind = BETA_TO_GA.get(kind, kind)
        if kind == "conversation.item.created":
            item = _item(data.get("item"), kind)
            return [ItemAdded(item), ItemDone(item)]
    return [_typed(kind, data)]


def _typed(kind: str, d: dict[str, Any]) -> ServerEvent:
    match kind:
        case "session.created" | "session.updated":
            session = d.get("session")
            if not isinstance(session, dict):
                raise _bad(kind, d, "'session' must be an object")
            sid = _opt_str(session, "id")
            if kind == "session.updated":
                return SessionUpdated(sid)
            expires = session.get("expires_at")
            shape: Dialect = "ga" if session.get("type") == "realtime" or "audio" in session else "beta"
            # A 64-bit Unix time or nothing: a giant integer would overflow the float arithmetic later.
            valid = isinstance(expires, int) and not isinstance(expires, bool) and 0 < expires < 1 << 40
            return SessionCreated(sid, expires if valid else None, shape)
        case "error":
            err = d.get("error")
            if not isinstance(err, dict):
                raise _bad(kind, d, "'error' must be an object")
            return ServerError(
                type=_opt_str(err, "type") or "unknown", code=_opt_str(err, "code"),
                message=_opt_str(err, "message") or "", param=_opt_str(err, "param"),
                client_event_id=_opt_str(err, "event_id"),
            )
        case "response.created" | "response.done":
            resp = d.get("response")
            if not isinstance(resp, dict):
                raise _bad(kind, d, "'response' must be an object")
            rid = _str(resp, "id", kind)
            if kind == "response.created":
                meta = resp.get("metadata")
                return ResponseCreated(rid, _opt_str(resp, "conversation_id"), meta if isinstance(meta, dict) else None)
            details: dict[str, Any] = resp["status_details"] if isinstance(resp.get("status_details"), dict) else {}
            error: dict[str, Any] = details["error"] if isinstance(details.get("error"), dict) else {}
            # A bad output item loses that item, not the response.done that ends the turn.
            output = tuple(_lenient_items(_list(resp, "output"), kind))
            usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else None
            return ResponseDone(rid, _str(resp, "status", kind), _opt_str(details, "reason"),
                                _opt_str(error, "code"), output, usage)
        case "response.output_item.added":
            return OutputItemAdded(_str(d, "response_id", kind), _item(d.get("item"), kind))
        case "response.output_item.done":
            return OutputItemDone(_str(d, "response_id", kind), _item(d.get("item"), kind))
        case "response.output_audio.delta":
            try:
                audio = base64.b64decode(_str(d, "delta", kind), validate=True)
            except (binascii.Error, ValueError):
                raise _bad(kind, {"type": kind}, "delta is not base64") from None
            return AudioDelta(_str(d, "response_id", kind), _str(d, "item_id", kind), audio)
        case "response.output_audio.done":
            return AudioDone(_str(d, "response_id", kind), _str(d, "item_id", kind))
        case "response.output_audio_transcript.delta":
            return TranscriptDelta(_str(d, "response_id", kind), _str(d, "item_id", kind), _str(d, "delta", kind))
        case "response.output_text.delta":
            return TextDelta(_str(d, "response_id", kind), _str(d, "item_id", kind), _str(d, "delta", kind))
        case "response.function_call_arguments.done":
            # Wrongly typed arguments fail this call alone (the model hears why), not the response.
            return FunctionArgumentsDone(_str(d, "response_id", kind), _opt_str(d, "item_id"),
                                         _str(d, "call_id", kind), _opt_str(d, "name"), _opt_str(d, "arguments"))
        case "input_audio_buffer.speech_started":
            return SpeechStarted(_int(d, "audio_start_ms", kind), _opt_str(d, "item_id"))
        case "input_audio_buffer.speech_stopped":
            return SpeechStopped(_int(d, "audio_end_ms", kind), _opt_str(d, "item_id"))
        case "input_audio_buffer.committed":
            return Committed(_str(d, "item_id", kind))
        case "conversation.item.added":
            return ItemAdded(_item(d.get("item"), kind))
        case "conversation.item.done":
            return ItemDone(_item(d.get("item"), kind))
        case "conversation.item.truncated":
            return ItemTruncated(_str(d, "item_id", kind), _int(d, "audio_end_ms", kind))
        case "conversation.item.input_audio_transcription.completed":
            return InputTranscript(_str(d, "item_id", kind), _str(d, "transcript", kind))
    return Other(kind)


def _lenient_items(raw: list[Any], kind: str) -> list[Item]:
    out = []
    for value in raw:
        try:
            out.append(_item(value, kind))
        except CloudError as err:
            log.warning("%s", err.message)
    return out


def server_to_dialect(event: dict[str, Any], dialect: Dialect) -> list[dict[str, Any]]:
    """Render a GA-shaped server event for `dialect` (the fake server's side of the table)."""
    if dialect == "ga":
        return [event]
    kind = event["type"]
    if kind == "conversation.item.done":
        return []  # beta announces an item once, as conversation.item.created
    out = json.loads(json.dumps(event))
    out["type"] = "conversation.item.created" if kind == "conversation.item.added" else GA_TO_BETA.get(kind, kind)
    if kind == "response.function_call_arguments.done":
        out.pop("name", None)
    for holder in (out.get("item"), *(out.get("response", {}).get("output") or ())):
        if isinstance(holder, dict):
            for part in holder.get("content") or ():
                if isinstance(part, dict) and part.get("type") in _CONTENT_BETA:
                    part["type"] = _CONTENT_BETA[part["type"]]
    return [out]
