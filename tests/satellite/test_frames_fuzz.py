"""Whatever bytes a peer sends, the framers either return messages or raise `FrameError` (which
closes that one connection): never another exception, never a hang; valid frames round-trip."""

from __future__ import annotations

import base64

from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.satellite.esphome_api import pb
from device.satellite.frames import FrameError, NoiseFramer, PlainFramer, decode

FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
PSK = base64.b64decode(base64.b64encode(bytes(range(32))))


def _feed_all(framer: PlainFramer | NoiseFramer, chunks: list[bytes]) -> None:
    try:
        for chunk in chunks:
            frames, _reply = framer.feed(chunk)
            for msg_type, payload in frames:
                decode(msg_type, payload)
    except FrameError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_plain_framer_takes_any_bytes(chunks: list[bytes]) -> None:
    _feed_all(PlainFramer(), chunks)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_noise_framer_takes_any_bytes(chunks: list[bytes]) -> None:
    _feed_all(NoiseFramer(PSK, "speaker", "00:11:22:33:44:55"), chunks)


@FUZZ
@given(st.sampled_from(sorted(MESSAGE_TYPE_TO_PROTO)), st.binary(max_size=80))
def test_any_payload_for_any_type_parses_or_is_a_frame_error(msg_type: int, payload: bytes) -> None:
    try:
        decode(msg_type, payload)
    except FrameError as err:
        assert err.code == "esphome-bad-message"


@FUZZ
@given(st.text(max_size=40), st.integers(0, 200), st.integers(1, 7))
def test_plain_frames_round_trip_split_anywhere(client_info: str, minor: int, cut: int) -> None:
    framer = PlainFramer()
    wire = framer.encode(pb.HelloRequest(client_info=client_info, api_version_major=1, api_version_minor=minor))
    frames, _ = framer.feed(wire[:cut])
    more, _ = framer.feed(wire[cut:])
    ((msg_type, payload),) = frames + more
    msg = decode(msg_type, payload)
    assert isinstance(msg, pb.HelloRequest) and msg.client_info == client_info and msg.api_version_minor == minor
