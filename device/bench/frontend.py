"""`voxhome bench frontend`: the always-on cost, ours beside pymicro-wakeword's own API.

CPU seconds per audio second (process CPU time, so other load on the machine doesn't count)
and peak RSS, for 1 and 4 wake words, measured on the same ≥10 minutes of synthesized speech
(sentences with an occasional "okay nabu, <command>", so our VAD runs as often as it would in a
home). Each configuration runs in a fresh subprocess, so its RSS is its own; medians of repeats.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from device.bench.speech import VOICES, available, cache_dir, concat, silence, synthesize

WORDS = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
CONFIGS = ("pymicro-1", "voxhome-1", "pymicro-4", "voxhome-4", "silero-always")
SENTENCES = (
    "the weather today is mild with a light breeze from the west",
    "please remember to buy milk eggs and bread on the way home",
    "the train to the city leaves at half past seven every morning",
    "she read the whole book in one evening and loved the ending",
    "our neighbours are planting tomatoes and beans in the garden",
    "the meeting has been moved to thursday afternoon at three",
    "he fixed the bicycle chain and went for a ride along the river",
    "dinner will be ready in about twenty minutes so wash your hands",
)
COMMANDS = ("turn on the kitchen light", "set the thermostat to twenty one degrees", "close the living room blinds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="audio length (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {','.join(CONFIGS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)


def bench_audio(minutes: float) -> Path:
    """Speech with a wake word + command about once a minute, cached as a WAV."""
    path = cache_dir() / f"bench-frontend-{minutes:g}min.wav"
    if path.exists():
        return path
    voices = [v for v in VOICES if available(v)]
    parts: list[np.ndarray] = []
    total, i = 0, 0
    target = int(minutes * 60 * 16000)
    while total < target:
        voice = voices[i % len(voices)]
        if i % 12 == 11:
            clip = concat(synthesize("okay nabu", voice), silence(0.3), synthesize(COMMANDS[i % len(COMMANDS)], voice))
        else:
            clip = synthesize(SENTENCES[i % len(SENTENCES)], voice)
        clip = concat(clip, silence(0.6 + 0.4 * (i % 3)))
        parts.append(clip)
        total += len(clip)
        i += 1
    audio = np.concatenate(parts)[:target]
    tmp = path.with_suffix(".tmp.wav")
    soundfile.write(str(tmp), audio, 16000, subtype="PCM_16")
    tmp.replace(path)
    return path


def _blocks(audio_path: str) -> Iterator[list[bytes]]:
    """The audio one second at a time, as 10 ms frames: streaming keeps the audio itself out of
    the peak RSS, which should be the models' and their runtimes'."""
    with soundfile.SoundFile(audio_path) as wav:
        if wav.samplerate != 16000 or wav.channels != 1:
            raise SystemExit(f"{audio_path}: expected 16 kHz mono")
        for block in wav.blocks(blocksize=16000, dtype="int16"):
            pcm = block.astype("<i2").tobytes()
            yield [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


def _child(config: str, audio_path: str) -> dict[str, Any]:
    """Run one configuration over the audio; only the processing is timed, not the reading."""
    name, _, count = config.partition("-")
    words = WORDS[: int(count)] if count.isdigit() else ()
    process: Callable[[bytes, int], int]
    if name == "pymicro":
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        models = [MicroWakeWord.from_builtin(Model(w)) for w in words]
        features = MicroWakeWordFeatures()
        # Count detections the way a user of the library would: a positive after 2 s without one.
        last = [-10_000] * len(models)

        def process(frame: bytes, at_ms: int) -> int:
            found = 0
            for feature in features.process_streaming(frame):
                for k, model in enumerate(models):
                    if model.process_streaming(feature):
                        found += at_ms - last[k] > 2000
                        last[k] = at_ms
            return found

    elif name == "voxhome":
        from device.events import AudioChunk, Detection
        from device.listening.frontend import Frontend
        from device.listening.pipeline import Pipeline
        from device.settings import VadSettings, WakeWordSettings
        from models.vad import SileroVad
        from models.wake import WakeWordDetector, resolve_word

        frontend = Frontend(
            WakeWordDetector(resolve_word(WakeWordSettings(w)) for w in words), SileroVad.from_builtin(), Pipeline(VadSettings())
        )

        def process(frame: bytes, at_ms: int) -> int:
            return sum(isinstance(e, Detection) for e in frontend.process(AudioChunk(frame, timestamp_ms=at_ms)))

    elif name == "silero":
        from models.vad import SileroVad

        vad = SileroVad.from_builtin()

        def process(frame: bytes, at_ms: int) -> int:
            return len(vad.process_streaming(frame))

    else:
        raise SystemExit(f"unknown configuration {config}")
    cpu, events, at_ms = 0.0, 0, 0
    for frames in _blocks(audio_path):
        start = time.process_time()
        for frame in frames:
            events += process(frame, at_ms)
            at_ms += 10
        cpu += time.process_time() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"config": config, "cpu_s": cpu, "audio_s": at_ms / 1000, "rss_mb": rss_mb, "events": events}


def _measure(config: str, audio: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "device.bench.frontend", "--child", config, "--audio", str(audio)],
        capture_output=True, text=True, check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(args: argparse.Namespace) -> int:
    if args.child:
        sys.stdout.write(json.dumps(_child(args.child, args.audio)) + "\n")
        return 0
    audio = bench_audio(args.minutes)
    configs = [c for c in args.configs.split(",") if c]
    results: dict[str, dict[str, float]] = {}
    for config in configs:
        runs = [_measure(config, audio) for _ in range(args.repeats)]
        results[config] = {
            "cpu_per_audio_s": statistics.median(r["cpu_s"] / r["audio_s"] for r in runs),
            "rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "events": runs[0]["events"],
            "audio_s": runs[0]["audio_s"],
        }
    out = sys.stdout.write
    out(f"front end, {results[configs[0]]['audio_s'] / 60:.1f} min of audio, median of {args.repeats} runs each\n")
    out(f"{'configuration':<16}{'CPU s / audio s':>17}{'% of a core':>13}{'peak RSS MB':>13}{'wakes':>8}\n")
    for config, r in results.items():
        label = {"voxhome-1": "voxhome 1w+VAD", "voxhome-4": "voxhome 4w+VAD", "pymicro-1": "pymicro 1w", "pymicro-4": "pymicro 4w", "silero-always": "VAD always on"}.get(config, config)
        out(f"{label:<16}{r['cpu_per_audio_s']:>17.5f}{100 * r['cpu_per_audio_s']:>12.2f}%{r['rss_mb']:>13.1f}{r['events'] if config != 'silero-always' else '-':>8}\n")
    for n in ("1", "4"):
        ours, peer = results.get(f"voxhome-{n}"), results.get(f"pymicro-{n}")
        if ours and peer:
            ratio = ours["cpu_per_audio_s"] / peer["cpu_per_audio_s"]
            verdict = "OK" if ratio <= 1.2 else "OVER"
            out(f"ratio voxhome/pymicro, {n} word(s) (+VAD for us): CPU {ratio:.2f}x (target <= 1.2x: {verdict}), RSS {ours['rss_mb'] / peer['rss_mb']:.2f}x\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m device.bench.frontend")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
