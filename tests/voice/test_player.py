from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from device.errors import AudioError
from device.events import AudioChunk, Say, ToolResult
from device.settings import SpeakerSettings
from device.voice.prompts import PromptBundle
from device.voice.render import SpeechRenderer
from device.voice.speaker import DeviceVoice, say_for_result
from device.voice.tts import LocalTts
from hal.audio import float_to_pcm16
from hal.opus import read_ogg_opus
from hal.player import Player, WavOutput, open_output
from hal.source import read_audio_file
from tests.voice.conftest import RecordingOutput


def _tone(seconds: float, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (level * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_prompt_played_into_a_wav_is_the_prompt(prompt_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "played.wav"
    expected = read_ogg_opus(prompt_bundle / "confirm.opus")
    player = Player(WavOutput(wav), SpeakerSettings(volume=0.5))
    player.play(AudioChunk(float_to_pcm16(PromptBundle(prompt_bundle).audio("confirm"))))
    assert player.drain(10.0)
    assert player.played_ms == -(-len(expected) // 160) * 10  # whole 10 ms blocks, the last padded
    player.close()
    played = read_audio_file(wav)
    assert len(played) >= len(expected)
    # The played audio is the decoded prompt at half volume (only the 8 ms fade-in differs).
    corr = np.corrcoef(played[: len(expected)], expected)[0, 1]
    assert corr > 0.99
    gain = np.dot(played[: len(expected)], expected) / np.dot(expected, expected)
    assert gain == pytest.approx(0.5, abs=0.02)
    # ... and not another prompt.
    other = read_ogg_opus(prompt_bundle / "offline.opus")
    n = min(len(other), len(played))
    assert abs(np.corrcoef(played[:n], other[:n])[0, 1]) < 0.3


def test_fade_in_has_no_click() -> None:
    out = RecordingOutput(realtime=False)
    player = Player(out, SpeakerSettings(volume=1.0, fade_ms=8))
    player.play_audio(np.full(1600, 0.5, np.float32))  # a DC step would click without a fade
    player.drain()
    player.close()
    audio = out.audio
    assert abs(audio[0]) < 0.01
    assert np.max(np.abs(np.diff(audio))) < 0.5 / 100  # no jump bigger than the ramp step
    assert audio[200] == pytest.approx(0.5, abs=1e-3)


def test_stop_fades_out_and_reports_the_played_position(recording: RecordingOutput) -> None:
    player = Player(recording, SpeakerSettings(volume=1.0, fade_ms=8))
    player.play_audio(np.full(16000 * 3, 0.5, np.float32))
    time.sleep(0.3)
    played = player.stop()
    written = sum(len(b) for b in recording.blocks) // 2
    assert 200 <= played <= 600
    assert played == written * 1000 // 16000  # exactly what was handed to the device
    audio = recording.audio
    assert abs(audio[-1]) < 0.01  # ended in silence: faded, not cut
    assert np.max(np.abs(np.diff(audio))) < 0.5 / 100
    time.sleep(0.05)
    assert len(recording.blocks) * 160 == written  # nothing more is played after stop
    assert player.played_ms == 0  # next stream starts from zero
    player.play_audio(_tone(0.1))
    assert player.drain()
    assert player.played_ms == 100
    player.close()


def test_stop_when_idle_returns_at_once() -> None:
    player = Player(RecordingOutput(), SpeakerSettings())
    start = time.monotonic()
    assert player.stop() == 0
    assert time.monotonic() - start < 0.1
    player.close()


def test_volume_changes_at_run_time_and_ducks() -> None:
    player = Player(RecordingOutput(realtime=False), SpeakerSettings(volume=0.8, duck_volume=0.25))
    player.set_volume(0.4)
    assert player.volume == 0.4
    with pytest.raises(AudioError):
        player.set_volume(1.5)
    assert player.step(+1) == 5 and player.volume == pytest.approx(0.5)
    assert player.step(+20) == 10 and player.volume == 1.0
    player.set_level(4)
    assert player.volume == pytest.approx(0.4)
    with pytest.raises(AudioError):
        player.set_level(11)
    player.play_audio(np.full(1600, 1.0, np.float32))
    player.drain()
    out = player._output  # noqa: SLF001 - the test's own RecordingOutput
    assert isinstance(out, RecordingOutput)
    assert out.audio[-1] == pytest.approx(0.4, abs=1e-3)
    player.duck(True)
    player.play_audio(np.full(1600, 1.0, np.float32))
    player.drain()
    assert out.audio[-1] == pytest.approx(0.1, abs=1e-3)
    player.close()
    assert out.closed


def test_reference_tap_gets_exactly_what_was_played() -> None:
    tapped: list[AudioChunk] = []
    out = RecordingOutput(realtime=False)
    player = Player(out, SpeakerSettings(volume=0.7), reference=tapped.append)
    player.play(AudioChunk(float_to_pcm16(_tone(0.5))))
    player.drain()
    player.close()
    assert b"".join(c.audio for c in tapped) == b"".join(out.blocks)
    assert [c.timestamp_ms for c in tapped] == list(range(0, 500, 10))


def test_other_rates_are_resampled() -> None:
    out = RecordingOutput(realtime=False)
    player = Player(out, SpeakerSettings(volume=1.0))
    t = np.arange(24000) / 24000
    player.play(AudioChunk(float_to_pcm16(0.5 * np.sin(2 * np.pi * 300 * t)), rate=24000))
    player.drain()
    player.close()
    assert abs(len(out.audio) - 16000) <= 320


def test_closed_player_refuses_audio() -> None:
    player = Player(RecordingOutput(), SpeakerSettings())
    player.close()
    with pytest.raises(AudioError):
        player.play_audio(_tone(0.1))


def test_device_voice_speaks_prompts_and_answers(prompt_bundle: Path, tmp_path: Path) -> None:
    wav = tmp_path / "voice.wav"
    player = Player(WavOutput(wav), SpeakerSettings(volume=1.0))
    voice = DeviceVoice(player, PromptBundle(prompt_bundle), SpeechRenderer(LocalTts("espeak-ng")))
    asked = voice.say(say_for_result(ToolResult("1", "unlock", "needs_confirmation", {})))
    answered = voice.say(say_for_result(ToolResult("2", "get_state", "ok", {}, "the bedroom is 21 degrees")))
    assert asked.prompt == "are_you_sure" and answered.text == "the bedroom is 21 degrees"
    assert answered.duration_ms > 1000 and answered.synth_ms > 0
    assert player.drain(10.0)
    player.close()
    played = read_audio_file(wav)
    confirm = read_ogg_opus(prompt_bundle / "confirm.opus")
    assert np.corrcoef(played[: len(confirm)], confirm)[0, 1] > 0.99
    assert len(played) >= (asked.duration_ms + answered.duration_ms) * 16


def test_prompt_through_the_real_alsa_path(prompt_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ALSA's `file` plugin records what the player wrote to the playback PCM."""
    raw = tmp_path / "speaker.raw"
    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text(
        f'pcm.voxspk {{\n  type file\n  slave.pcm {{ type null }}\n  file "{raw}"\n  format "raw"\n}}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(asoundrc))
    output = open_output(SpeakerSettings(backend="alsa", device="voxspk"))
    assert output.queued_samples() == 0  # nothing written yet
    player = Player(output, SpeakerSettings(volume=1.0))
    voice = DeviceVoice(player, PromptBundle(prompt_bundle))
    spoken = voice.say(Say(prompt="offline"))
    assert player.drain(10.0)
    played_ms = player.played_ms
    player.close()
    played = np.frombuffer(raw.read_bytes(), dtype="<i2").astype(np.float32) / 32768
    expected = read_ogg_opus(prompt_bundle / "offline.opus")
    assert spoken.duration_ms == len(expected) * 1000 // 16000
    # The null slave consumes at once, so everything handed over counts as played.
    assert played_ms == len(played) * 1000 // 16000
    assert len(played) >= len(expected)
    assert np.corrcoef(played[: len(expected)], expected)[0, 1] > 0.99


def test_missing_alsa_device_is_an_audio_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text("pcm.other { type null }\n")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(asoundrc))
    with pytest.raises(AudioError) as err:
        open_output(SpeakerSettings(backend="alsa", device="nosuch"))
    assert err.value.code == "audio-device"
