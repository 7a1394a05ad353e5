"""`voxhome bench tts`: the local TTS engines' start-up time and real-time factor, side by side."""

from __future__ import annotations

import argparse
import statistics
import sys

from device.errors import AudioError
from device.voice.tts import ENGINES, LocalTts, engine_available

SHORT = "Okay."
LONG = (
    "The bedroom temperature is twenty one degrees. The front door is locked, "
    "and I am turning on three lights in the kitchen."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine and text (median reported)")


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(f"{'engine':10} {'startup ms':>10} {'long ms':>8} {'audio ms':>8} {'RTF':>6}\n")
    for engine in ENGINES:
        if not engine_available(engine):
            sys.stdout.write(f"{engine:10} not installed\n")
            continue
        tts = LocalTts(engine)
        try:
            tts.speak(SHORT)  # warm the page cache so start-up is the process, not the disk
        except AudioError as err:  # installed but broken (festival without a voice): say so
            sys.stdout.write(f"{engine:10} fails: {err.message}\n")
            continue
        startup = statistics.median(tts.speak(SHORT).synth_ms for _ in range(args.repeats))
        runs = [tts.speak(LONG) for _ in range(args.repeats)]
        synth = statistics.median(r.synth_ms for r in runs)
        audio_ms = runs[0].duration_ms
        sys.stdout.write(f"{engine:10} {startup:10.0f} {synth:8.0f} {audio_ms:8d} {synth / audio_ms:6.3f}\n")
    return 0
