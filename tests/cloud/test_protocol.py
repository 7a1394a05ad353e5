"""The pure protocol layer: dialect translation in both directions, error codes, fuzzing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.cloud import protocol as p
from device.cloud.fake_server import load_transcript
from device.errors import CloudError
from tests.cloud.conftest import EVENTS

CONFIG = p.SessionConfig(instructions="Be brief.", voice="marin", speed=1.1, language="de",
                         tools=({"type": "function", "name": "control_device", "description": "x", "parameters": {"type": "object"}},))


def test_ga_session_update_shape() -> None:
    wire = p.client_to_wire(p.SessionUpdate(CONFIG), "ga", "e1")
    s = wire["session"]
    assert wire["event_id"] == "e1" and s["type"] == "realtime" and s["output_modalities"] == ["audio"]
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["input"]["turn_detection"] is None  # client-side turns by default
    assert s["audio"]["input"]["transcription"]["language"] == "de"
    assert s["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.1}
    assert "modalities" not in s and "voice" not in s and "temperature" not in s


def test_beta_session_update_shape_matches_the_transcript_keys() -> None:
    wire = p.client_to_wire(p.SessionUpdate(CONFIG), "beta")
    reference = next(e for d, e in load_transcript(EVENTS / "push-to-talk.beta.jsonl") if e["type"] == "session.update")
    assert "type" not in wire["session"]
    assert wire["session"]["input_audio_format"] == "pcm16" and wire["session"]["voice"] == "marin"
    assert set(wire["session"]) <= set(reference["session"])


def test_ga_update_keys_match_the_transcript() -> None:
    wire = p.client_to_wire(p.SessionUpdate(CONFIG), "ga")
    reference = next(e for d, e in load_transcript(EVENTS / "push-to-talk.ga.jsonl") if e["type"] == "session.update")
    assert set(wire["session"]) <= set(reference["session"])
    assert set(wire["session"]["audio"]["input"]) == set(reference["session"]["audio"]["input"])


def test_server_vad_turn_detection() -> None:
    cfg = p.SessionConfig(instructions="", voice="alloy", turn_detection="server_vad")
    dialects: tuple[p.Dialect, ...] = ("ga", "beta")
    for dialect in dialects:
        s = p.client_to_wire(p.SessionUpdate(cfg), dialect)["session"]
        turn = s["audio"]["input"]["turn_detection"] if dialect == "ga" else s["turn_detection"]
        assert turn["type"] == "server_vad" and turn["create_response"] is True


def test_text_response_and_append() -> None:
    assert p.client_to_wire(p.ResponseCreate(text_only=True), "ga")["response"] == {"output_modalities": ["text"]}
    assert p.client_to_wire(p.ResponseCreate(text_only=True), "beta")["response"] == {"modalities": ["text"]}
    append = p.client_to_wire(p.AudioAppend(b"\x01\x00" * 10), "ga", "ignored")
    assert "event_id" not in append and base64.b64decode(append["audio"]) == b"\x01\x00" * 10


@pytest.mark.parametrize(("beta", "ga"), sorted(p.BETA_TO_GA.items()))
def test_beta_server_names_become_ga(beta: str, ga: str) -> None:
    event: dict[str, Any] = {"type": beta, "response_id": "r", "item_id": "i", "delta": "AAAA", "transcript": "t", "text": "t"}
    (parsed,) = p.parse_server_event(json.dumps(event), "beta")
    assert p.server_to_dialect({**event, "type": ga}, "beta")[0]["type"] == beta
    if ga.endswith("audio.delta"):
        assert parsed == p.AudioDelta("r", "i", b"\x00\x00\x00")
    elif ga.endswith(".delta"):
        assert isinstance(parsed, (p.TranscriptDelta, p.TextDelta)) and parsed.delta == "AAAA"


def test_beta_item_created_is_added_and_done() -> None:
    event = {"type": "conversation.item.created", "item": {"id": "i1", "type": "message", "role": "assistant",
                                                         "content": [{"type": "audio", "transcript": "hi"}]}}
    added, done = p.parse_server_event(json.dumps(event), "beta")
    assert isinstance(added, p.ItemAdded) and isinstance(done, p.ItemDone)
    assert added.item.transcript == "hi"
    # in GA the same name is not renamed
    assert p.parse_server_event(json.dumps(event), "ga") == [p.Other("conversation.item.created")]


def test_ga_names_are_not_renamed_in_beta_parsing_and_vice_versa() -> None:
    ga_delta = {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": ""}
    assert isinstance(p.parse_server_event(json.dumps(ga_delta), "ga")[0], p.AudioDelta)
    beta_delta = {**ga_delta, "type": "response.audio.delta"}
    assert p.parse_server_event(json.dumps(beta_delta), "ga") == [p.Other("response.audio.delta")]


def test_function_arguments_done_name_is_optional_in_beta() -> None:
    for name, dialect in (("function-call.beta.jsonl", "beta"), ("function-call.ga.jsonl", "ga")):
        done = [ev for d, e in load_transcript(EVENTS / name) if d == "server"
                for ev in p.parse_server_dict(e, dialect)  # type: ignore[arg-type]
                if isinstance(ev, p.FunctionArgumentsDone)]
        assert len(done) == 1 and done[0].call_id == "call_FAKE_fc_01"
        assert done[0].name == ("control_device" if dialect == "ga" else None)


def test_errors_and_races_codes() -> None:
    errors = [ev for d, e in load_transcript(EVENTS / "errors-and-races.ga.jsonl") if d == "server"
              for ev in p.parse_server_dict(e, "ga") if isinstance(ev, p.ServerError)]
    assert [e.code for e in errors] == ["input_audio_buffer_commit_empty", "response_cancel_not_active",
                                        "conversation_already_has_active_response", "response_cancel_not_active",
                                        "missing_required_parameter", "unknown_parameter"]
    assert errors[0].client_event_id == "cli_err_002"
    last = p.parse_server_dict(load_transcript(EVENTS / "errors-and-races.ga.jsonl")[-1][1], "ga")[0]
    assert isinstance(last, p.ResponseDone) and last.status == "failed" and last.error_code == "inference_rate_limit_exceeded"


@pytest.mark.parametrize("raw", [b"\xff\xfe", "not json", "[1,2]", '{"no":"type"}', '{"type": 5}'])
def test_malformed_frames_raise_cloud_error(raw: Any) -> None:
    with pytest.raises(CloudError) as err:
        p.parse_server_event(raw, "ga")
    assert err.value.code == "cloud-bad-event"


@pytest.mark.parametrize("event", [
    {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "@@not base64@@"},
    {"type": "response.done", "response": "nope"},
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": "10"},
    {"type": "error"},
])
def test_known_event_with_bad_fields(event: dict[str, Any]) -> None:
    with pytest.raises(CloudError, match="bad .* event") as err:
        p.parse_server_event(json.dumps(event), "ga")
    assert err.value.code == "cloud-bad-event"


def test_session_created_shape_detects_dialect() -> None:
    for name, shape in (("push-to-talk.ga.jsonl", "ga"), ("push-to-talk.beta.jsonl", "beta")):
        first = load_transcript(EVENTS / name)[0][1]
        (created,) = p.parse_server_dict(first, "beta" if shape == "beta" else "ga")
        assert isinstance(created, p.SessionCreated) and created.shape == shape and created.expires_at == 1767229200


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
types = st.sampled_from(["error", "response.done", "response.created", "response.output_audio.delta", "session.created",
                         "conversation.item.added", "response.function_call_arguments.done", "response.audio.delta",
                         "conversation.item.created", "input_audio_buffer.speech_started", "whatever.new"])


@settings(max_examples=300, deadline=None)
@given(kind=types, body=st.dictionaries(st.sampled_from(["response", "item", "error", "session", "delta", "response_id",
                                                         "item_id", "call_id", "arguments", "audio_start_ms"]),
                                        json_values, max_size=6),
       dialect=st.sampled_from(["ga", "beta"]))
def test_fuzz_parser_only_raises_cloud_error(kind: str, body: dict[str, Any], dialect: str) -> None:
    try:
        events = p.parse_server_event(json.dumps({**body, "type": kind}), dialect)  # type: ignore[arg-type]
    except CloudError as err:
        assert err.code == "cloud-bad-event" and len(err.message) < 300
    else:
        assert events


def test_history_text_items_per_dialect() -> None:
    ga = p.client_to_wire(p.HistoryText("assistant", "Hi."), "ga")["item"]
    beta = p.client_to_wire(p.HistoryText("assistant", "Hi."), "beta")["item"]
    user = p.client_to_wire(p.HistoryText("user", "Hello"), "beta")["item"]
    assert ga["content"] == [{"type": "output_text", "text": "Hi."}] and ga["role"] == "assistant"
    assert beta["content"] == [{"type": "text", "text": "Hi."}]
    assert user == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}
