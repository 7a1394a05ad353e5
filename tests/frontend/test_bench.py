"""The benchmark commands run end to end (their numbers are read by people, not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from device.bench.speech import VOICES
from device.bench.wake.endpoint import end_of_speech

ROOT = Path(__file__).resolve().parents[2]


def test_frontend_bench_prints_both_sides_and_the_ratio() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "device.bench.frontend", "--minutes", "0.25", "--repeats", "1", "--configs", "pymicro-1,voxhome-1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "pymicro 1w" in result.stdout and "voxhome 1w+VAD" in result.stdout
    assert "ratio voxhome/pymicro, 1 word(s)" in result.stdout


def test_end_of_speech_eval_on_one_voice() -> None:
    (summary, _) = end_of_speech([VOICES[0]])
    assert "on 6 clean commands" in summary and "within 300 ms: 6/6" in summary
