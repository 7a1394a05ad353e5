"""Front end + pipeline + service on real models, from files and from the real ALSA path."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.events import AudioStop, Detection, Error, ListenTimeout, VoiceStarted, VoiceStopped
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.service import Service, open_source
from device.settings import MicSettings, Settings, VadSettings
from hal.audio import float_to_pcm16, frames_from_pcm
from hal.source import FileSource, PcmSource
from models.vad import SileroVad
from models.wake import WakeWordDetector
from tests.frontend.conftest import active_end_s, pcm, silence, speech


def make_frontend(four_words: WakeWordDetector, vad: VadSettings | None = None) -> Frontend:
    four_words.reset()
    return Frontend(four_words, SileroVad.from_builtin(), Pipeline(vad or VadSettings()))


def run_frames(frontend: Frontend, audio: bytes) -> list[object]:
    events: list[object] = []
    position = 0
    for chunk in frames_from_pcm(audio):
        events += frontend.process(chunk)
        position = chunk.end_ms
    return events + frontend.finish(position)


def control(events: list[object]) -> list[object]:
    return [e for e in events if isinstance(e, Detection | VoiceStarted | VoiceStopped | ListenTimeout)]


def test_wake_then_command_cut_out(four_words: WakeWordDetector, command_clip: tuple[np.ndarray, float]) -> None:
    audio, true_end_s = command_clip
    frontend = make_frontend(four_words)
    events = control(run_frames(frontend, float_to_pcm16(audio)))
    assert [type(e).__name__ for e in events] == ["Detection", "VoiceStarted", "VoiceStopped"]
    wake, started, stopped = events
    assert isinstance(wake, Detection) and wake.word == "okay_nabu"
    assert isinstance(started, VoiceStarted) and started.timestamp_ms > wake.timestamp_ms - 300
    assert isinstance(stopped, VoiceStopped) and stopped.reason == "silence"
    assert abs(stopped.timestamp_ms - 1000 * true_end_s) <= 300
    # The utterance starts in the pause after the wake word (not in the pre-roll that holds the
    # word: lead 0.7 s, the word, 0.4 s of pause, the command) and runs past the true end.
    word = speech("okay nabu")
    word_end_ms = 1000 * active_end_s(word, 0.7)
    command_start_ms = 1000 * (0.7 + len(word) / 16000 + 0.4)
    assert word_end_ms <= stopped.start_ms < command_start_ms
    assert stopped.start_ms + len(stopped.audio) // 32 >= 1000 * true_end_s


def test_vad_runs_only_after_a_wake_word(four_words: WakeWordDetector) -> None:
    chatter = pcm(silence(0.3), speech("the weather is nice today and the garden looks green"), silence(0.5))
    frontend = make_frontend(four_words)
    assert control(run_frames(frontend, chatter)) == []
    assert frontend.vad_windows_run == 0
    frontend = make_frontend(four_words)
    events = run_frames(frontend, pcm(silence(0.3), speech("okay nabu"), silence(6.0)))
    assert [type(e).__name__ for e in control(events)] == ["Detection", "ListenTimeout"]
    # VAD ran for the listening span only (≈ the 5 s start timeout), not the whole 7 s file.
    # (+ the pre-roll, where it finds the pause after the wake word.)
    assert 140 <= frontend.vad_windows_run <= (5000 + VadSettings().preroll_ms) // 32 + 2


def test_service_ends_by_itself_at_the_end_of_a_file(four_words: WakeWordDetector, command_wav: Path) -> None:
    events: list[object] = []
    service = Service(FileSource(command_wav), make_frontend(four_words), [events.append])
    assert asyncio.run(asyncio.wait_for(service.run(), 30)) == 0
    assert [type(e).__name__ for e in control(events)] == ["Detection", "VoiceStarted", "VoiceStopped"]
    assert isinstance(events[-1], AudioStop)


class _BrokenSource:
    def frames(self):  # type: ignore[no-untyped-def]
        yield from PcmSource(bytes(3200)).frames()
        raise OSError("device unplugged")

    def close(self) -> None:
        pass


def test_a_failing_source_becomes_an_error_event_and_the_run_ends(four_words: WakeWordDetector) -> None:
    events: list[object] = []
    service = Service(_BrokenSource(), make_frontend(four_words), [events.append])
    assert asyncio.run(asyncio.wait_for(service.run(), 30)) == 1
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and "device unplugged" in errors[0].message


def test_real_alsa_capture_through_the_file_plugin(
    four_words: WakeWordDetector, command_clip: tuple[np.ndarray, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "mic.raw"
    raw.write_bytes(float_to_pcm16(command_clip[0]))
    asoundrc = tmp_path / "asoundrc"
    asoundrc.write_text(
        'pcm.voxmic {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
        f'  infile "{raw}"\n  format "raw"\n}}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(asoundrc))
    source = open_source(MicSettings(backend="alsa", device="voxmic"))
    events: list[object] = []
    service = Service(source, make_frontend(four_words), [])

    def collect(event: object) -> None:
        events.append(event)
        if isinstance(event, VoiceStopped):
            service.stop()  # a microphone never ends by itself

    service.add_handler(collect)
    assert asyncio.run(asyncio.wait_for(service.run(), 60)) == 0
    got = control(events)
    assert [type(e).__name__ for e in got] == ["Detection", "VoiceStarted", "VoiceStopped"]
    assert abs(got[2].timestamp_ms - 1000 * command_clip[1]) <= 300  # type: ignore[attr-defined]


def test_settings_pick_the_source() -> None:
    assert type(open_source(Settings().audio.mic, None)).__name__ == "AlsaSource"
    assert type(open_source(MicSettings(backend="null"))).__name__ == "NullSource"


def test_muted_microphone_path_does_nothing_but_keeps_reading(command_wav: Path, four_words: WakeWordDetector) -> None:
    events: list[object] = []
    frontend = make_frontend(four_words)
    service = Service(FileSource(command_wav), frontend, [events.append], muted=lambda: True)
    assert asyncio.run(service.run()) == 0
    assert [e for e in events if not isinstance(e, AudioStop)] == []
    assert frontend.vad_windows_run == 0
    assert service.position_ms > 2000  # the whole file was read: the loop stayed alive


def test_libasound_error_lines_go_to_the_log_not_stderr() -> None:
    # libasound prints its internals to stderr on every failed open; under systemd that would be
    # eight journal lines per reopen attempt. Our error says what failed; the rest is debug.
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.DEBUG)\n"
        "from device.errors import AudioError\n"
        "from hal.alsa import open_capture\n"
        "try:\n"
        "    open_capture('no_such_pcm_here', 160, 4)\n"
        "except AudioError as err:\n"
        "    print('raised', err.code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "raised audio-device" in done.stdout
    assert "libasound" in done.stdout  # the lines are kept, at debug level
    assert "ALSA lib" not in done.stderr, done.stderr
