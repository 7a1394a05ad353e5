"""`voxhome transcribe FILE...`: on-device speech recognition of audio files, one JSON line each.

Any WAV/FLAC/Ogg the audio HAL reads works (resampled to 16 kHz mono). With `--home FILE` (a
discovery file like device/sim/demo_home.json) or `--demo-home`, the line also carries what
constrained decoding hears on the same encoding: the best sentence of that home's grammar (the
configured language, custom sentences and speaker area, as the assistant builds it) and its
`gap`, how much less likely per token it is than the free transcript (≈ 0 when the audio says
it). A file that can't be read gets a line with its error; the others still run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device.cli.common import print_json, settings_from_args
from device.errors import VoxError
from hal.source import read_audio_file

if TYPE_CHECKING:
    from models.asr.runner import Details


def register(sub: Any) -> None:
    parser = sub.add_parser("transcribe", help="transcribe audio files with the on-device speech model")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="WAV, FLAC or Ogg files")
    parser.add_argument("--bundle", type=Path, help="speech-model bundle (default: asr.bundle, else the build cache)")
    parser.add_argument("--threads", type=int, help="inference threads (default: asr.threads)")
    home = parser.add_mutually_exclusive_group()
    home.add_argument("--home", type=Path, metavar="FILE",
                      help="discovery file of a home: also decode constrained to that home's sentences")
    home.add_argument("--demo-home", action="store_true", help="the same with the built-in demo home")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that other commands don't pay for onnxruntime.
    from models.asr.locate import asr_bundle
    from models.asr.runner import WhisperOnnx

    settings = settings_from_args(args)
    threads = args.threads if args.threads is not None else settings.asr.threads
    language = None
    if args.home is not None or args.demo_home:
        from device.bench.asr_commands import DEMO_HOME, home_registry
        from device.intent.language import HomeLanguage
        from device.intent.templates import load_templates

        # As the assistant builds it (appliance.build_language), before the model: a bad file fails fast.
        templates = load_templates(settings.intent.language, settings.intent.custom_sentences)
        language = HomeLanguage(home_registry(args.home or DEMO_HOME), templates=templates, area=settings.device.area)
    bundle = asr_bundle(args.bundle or settings.asr.bundle, model=settings.asr.model_for(settings.intent.language))
    runner = WhisperOnnx.load(bundle, threads=threads, language=settings.intent.language)
    search = runner.prepare(language.graph()) if language is not None else None
    failed = 0
    for path in args.files:
        try:
            audio = read_audio_file(path)
            start = time.perf_counter()
            text, details = runner.transcribe(audio, search)
            line: dict[str, Any] = {
                "file": str(path),
                "transcript": text,
                "duration_s": round(details.duration_s, 3),
                "time_s": round(time.perf_counter() - start, 4),
            }
            if search is not None:
                line |= grammar_fields(details)
        except VoxError as err:
            failed += 1
            line = {"file": str(path), "error": {"code": err.code, "message": err.message}}
        print_json(line)
    return 1 if failed else 0


def grammar_fields(details: Details) -> dict[str, Any]:
    """The grammar's best sentence (as words, the way the assistant reads it) and its per-token gap
    to the free transcript; None when it wasn't searched (silence, audio longer than one window)."""
    from device.intent.grammar_graph import normalise_words

    best = details.grammar[0] if details.grammar else None
    if best is None:
        return {"command": None, "gap": None, "command_time_s": 0.0}
    return {
        "command": normalise_words(best.text),
        "gap": round(float(details.mean_logprob - best.mean_logprob), 4),
        "command_time_s": round(details.grammar_ms / 1000, 4),
    }
