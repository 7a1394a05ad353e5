from __future__ import annotations

import pytest

from device.errors import AudioError
from device.events import AudioChunk
from device.voice.mute import MuteState, MuteSwitch
from device.voice.tts import LocalTts
from hal.leds import LedPattern, NullLeds


def test_mute_stops_the_mic_path_and_reports() -> None:
    reports: list[MuteState] = []
    leds = NullLeds()
    switch = MuteSwitch(muted=False, leds=leds, report=reports.append)
    frames = [AudioChunk(bytes(320), timestamp_ms=10 * i) for i in range(6)]

    def source():  # type: ignore[no-untyped-def]
        for i, frame in enumerate(frames):
            if i == 2:
                assert switch.handle_command("ON")
            if i == 4:
                assert switch.set(False, "voice")
            yield frame

    passed = [f.timestamp_ms for f in switch.gate(source())]
    assert passed == [0, 10, 40, 50]
    assert reports == [MuteState(True, "mqtt"), MuteState(False, "voice")]
    assert reports[0].to_status() == {"muted": True, "source": "mqtt"}
    assert leds.pattern is LedPattern.OFF
    assert not switch.set(False, "mqtt")  # no change, no report
    assert not switch.handle_command("banana")
    assert len(reports) == 2


def test_muted_from_config_shows_the_led() -> None:
    leds = NullLeds()
    switch = MuteSwitch(muted=True, leds=leds)
    assert switch.muted and leds.pattern is LedPattern.MUTED
    assert list(switch.gate(iter([AudioChunk(bytes(320))]))) == []


@pytest.mark.parametrize("engine", ["espeak-ng", "flite"])
def test_local_tts_speaks_with_timing(engine: str) -> None:
    speech = LocalTts(engine).speak("the bedroom temperature is 21 degrees")
    assert 1200 < speech.duration_ms < 5000
    assert speech.synth_ms > 0
    assert abs(speech.audio).max() > 0.05


def test_tts_bad_input() -> None:
    with pytest.raises(AudioError):
        LocalTts("espeak-ng").speak("   ")
    with pytest.raises(AudioError):
        LocalTts("nonsense")
    with pytest.raises(AudioError):
        LocalTts("espeak-ng").speak("a" * 1000)

