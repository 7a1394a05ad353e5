"""The utterance's upload over WebRTC: faster than spoken, one contiguous RTP stream, all of it
in the server's buffer when the commit arrives."""

from __future__ import annotations

import asyncio

import pytest

from device.cloud.fake_server import FakeRealtimeServer, Reply
from device.cloud.media import FRAME_SAMPLES, RTP_RATE, PacedTrack
from device.settings import CloudSettings
from tests.cloud.conftest import PlaybackSink, speech
from tests.cloud.test_webrtc import run, types, webrtc_client


def test_a_sped_up_push_keeps_rtp_time_contiguous_and_a_pause_follows_the_clock() -> None:
    async def go() -> tuple[list[int | None], list[int | None]]:
        track = PacedTrack()
        track.push(speech(200), 16000, speed=16.0)  # 10 frames + the flush, in ~25 ms
        first = [(await track.recv()).pts for _ in range(10 + track.flush_frames)]
        await asyncio.sleep(0.4)  # the speaker is idle: nothing is sent
        track.push(speech(100), 16000, speed=16.0)
        second = [(await track.recv()).pts for _ in range(5)]
        track.stop()
        return first, second

    firsts, seconds = run(go())
    first, second = [t or 0 for t in firsts], [t or 0 for t in seconds]
    # One frame's samples per frame, whatever the pace: the receiver sees the spoken stream, early.
    assert [b - a for a, b in zip(first, first[1:], strict=False)] == [FRAME_SAMPLES] * (len(first) - 1)
    assert [b - a for a, b in zip(second, second[1:], strict=False)] == [FRAME_SAMPLES] * 4
    # After the pause RTP time is the wall clock's since the first frame again (≥ the 0.4 s idle):
    # a jump, not a continuation of the burst, which ran ahead of the clock.
    assert second[0] >= 0.4 * RTP_RATE and second[0] - first[-1] > 2 * FRAME_SAMPLES


@pytest.mark.parametrize("speed", [1.0, 8.0])
def test_the_commit_takes_the_whole_utterance_at_any_upload_speed(speed: float) -> None:
    sink = PlaybackSink()

    async def go() -> tuple[list[str], list[float], str]:
        statuses: list[str]
        async with FakeRealtimeServer(webrtc=True, replies=[Reply(text="Done.", audio_ms=300)], cycle=True) as server:
            client = webrtc_client(server, sink, upload_speed=speed)
            statuses = [(await client.turn(speech(ms))).status for ms in (1200, 400, 400)]
            await client.close()
        return statuses, server.committed_audible_ms, ",".join(types(server))

    statuses, committed, sent = run(go())
    assert statuses == ["ok", "ok", "ok"]
    # No append and no clear: a clear on the data channel could overtake the first frames on RTP.
    assert "input_audio_buffer.append" not in sent and "input_audio_buffer.clear" not in sent
    # Every spoken frame had arrived on the server's track when the commit (on the data channel)
    # did, and none spilled into the next turn's buffer (a frame of codec ramp either side).
    for got, spoken in zip(committed, (1200, 400, 400), strict=True):
        assert spoken <= got <= spoken + 40


def test_upload_speed_is_bounded_in_the_settings() -> None:
    for bad in (0.5, 64.0):
        with pytest.raises(ValueError, match="upload_speed"):
            CloudSettings(upload_speed=bad)
