"""`voxhome listen` / `voxhome run` as subprocesses: JSON lines out, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def voxhome(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_listen_on_a_file_prints_wake_speech_start_speech_end(command_wav: Path, command_clip: tuple[np.ndarray, float]) -> None:
    result = voxhome("listen", "--audio", str(command_wav))
    assert result.returncode == 0, result.stderr
    # speech_pause: early endpointing's reading point, reported where it falls (tests/frontend/test_early.py).
    lines = [e for e in map(json.loads, result.stdout.splitlines()) if e["type"] != "speech_pause"]
    assert [e["type"] for e in lines] == ["wake", "speech_start", "speech_end"]
    assert lines[0]["word"] == "okay_nabu" and lines[0]["score"] > 0.85
    assert abs(lines[2]["timestamp_ms"] - 1000 * command_clip[1]) <= 300
    assert lines[2]["audio_ms"] > 1500 and lines[2]["reason"] == "silence"


def test_run_exits_at_the_end_of_the_file(command_wav: Path, tmp_path: Path) -> None:
    # No broker and no cloud: the speaker still hears, transcribes and answers, then exits.
    config = tmp_path / "config.toml"
    # Its own state dir: a timer another run left in the default one would ring in the middle.
    config.write_text(f"[device]\nstate_dir = '{tmp_path / 'state'}'\n[mqtt]\nenabled = false\n[cloud]\nenabled = false\n"
                      "[audio.speaker]\nbackend = 'null'\n")
    result = voxhome("--config", str(config), "run", "--audio", str(command_wav), "--save", str(tmp_path / "utt"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(x) for x in result.stdout.splitlines() if json.loads(x)["type"] not in ("spoke", "speech_pause")]
    assert [e["type"] for e in events[:4]] == ["wake", "speech_start", "speech_end", "transcript"]
    assert "kitchen" in events[3]["text"].lower()
    assert len(list((tmp_path / "utt").glob("*.wav"))) == 1


def test_bad_audio_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    result = voxhome("listen", "--audio", str(bad))
    assert result.returncode == 2
    assert "error [audio-unsupported]" in result.stderr and "Traceback" not in result.stderr
    result = voxhome("listen", "--audio", str(tmp_path / "missing.flac"))
    assert result.returncode == 2 and "error [audio-missing]" in result.stderr


def test_bad_config_names_the_key(tmp_path: Path, command_wav: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[vad]\nend_silence_ms = "long"\n')
    result = voxhome("--config", str(config), "listen", "--audio", str(command_wav))
    assert result.returncode == 2 and "vad.end_silence_ms" in result.stderr and "Traceback" not in result.stderr
    config.write_text('[[wake.words]]\nmodel = "okay_nabo"\n')
    result = voxhome("--config", str(config), "listen", "--audio", str(command_wav))
    assert result.returncode == 2 and "error [model-missing]" in result.stderr and "okay_nabo" in result.stderr


def test_config_chooses_words_and_silence(tmp_path: Path, command_wav: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[wake.words]]\nmodel = "hey_jarvis"\n')
    result = voxhome("--config", str(config), "listen", "--audio", str(command_wav))
    assert result.returncode == 0 and result.stdout == ""  # okay nabu isn't listened for
