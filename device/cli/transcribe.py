"""`voxhome transcribe FILE...`: on-device speech recognition of audio files, one JSON line each.

Any WAV/FLAC/Ogg the audio HAL reads works (resampled to 16 kHz mono). With `--candidates` the
line also carries the best of those sentences and its confidence (constrained decoding).
A file that can't be read gets a line with its error; the others still run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from device.cli.common import print_json, settings_from_args
from device.errors import ConfigError, VoxError
from hal.source import read_audio_file


def register(sub: Any) -> None:
    parser = sub.add_parser("transcribe", help="transcribe audio files with the on-device speech model")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="WAV, FLAC or Ogg files")
    parser.add_argument("--bundle", type=Path, help="speech-model bundle (default: asr.bundle, else the build cache)")
    parser.add_argument("--threads", type=int, help="inference threads (default: asr.threads)")
    parser.add_argument("--candidates", type=Path, help="text file, one candidate sentence per line: also pick the best")
    parser.set_defaults(func=run)


def load_candidates(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("config-value", f"can't read candidates from {path}: {err}") from None
    candidates = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not candidates:
        raise ConfigError("config-value", f"{path} holds no candidate sentences")
    return candidates


def run(args: argparse.Namespace) -> int:
    # Imported here so that other commands don't pay for onnxruntime.
    from models.asr.locate import asr_bundle
    from models.asr.runner import WhisperOnnx

    settings = settings_from_args(args)
    threads = args.threads if args.threads is not None else settings.asr.threads
    candidates = load_candidates(args.candidates) if args.candidates else None
    bundle = asr_bundle(args.bundle or settings.asr.bundle)
    runner = WhisperOnnx.load(bundle, threads=threads)
    failed = 0
    for path in args.files:
        try:
            audio = read_audio_file(path)
            start = time.perf_counter()
            text, details = runner.transcribe(audio)
            line: dict[str, Any] = {
                "file": str(path),
                "transcript": text,
                "duration_s": round(details.duration_s, 3),
                "time_s": round(time.perf_counter() - start, 4),
            }
            if candidates:
                start = time.perf_counter()
                best, confidence = runner.best(audio, candidates)
                line |= {"command": best, "confidence": round(confidence, 4), "command_time_s": round(time.perf_counter() - start, 4)}
        except VoxError as err:
            failed += 1
            line = {"file": str(path), "error": {"code": err.code, "message": err.message}}
        print_json(line)
    return 1 if failed else 0
