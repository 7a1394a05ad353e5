"""`voxhome models build asr|prompts|tts|wake|wake-phrase` and `voxhome models bundle DIR`: the model factory."""

from __future__ import annotations

import argparse
from typing import Any

from device.cli.group import run_module

BUILDERS = {
    "asr": "models.asr.factory",
    "prompts": "device.voice.factory",
    "tts": "models.tts.factory",
    "wake": "models.wake_factory",
    "wake-phrase": "models.wake_phrase_enrol",
}


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="build and package model bundles")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="build a bundle from packaged weights (cached)")
    build.add_argument("kind", choices=sorted(BUILDERS))
    build.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    build.set_defaults(func=lambda args: run_module(BUILDERS[args.kind], f"models build {args.kind}", args))
    bundle = verbs.add_parser("bundle", help="make a bundle (manifest with sizes and hashes) from a model directory")
    bundle.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    bundle.set_defaults(func=lambda args: run_module("models.bundle_cli", "models bundle", args))
