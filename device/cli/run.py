"""`voxhome run`: the appliance — wake word, local commands, the cloud, the home, its voice.

With `--audio FILE` it runs on the file and exits at its end; otherwise on the configured
microphone until SIGTERM/SIGINT. One JSON line per event on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from device.appliance import RunOptions, run
from device.cli.common import add_cloud_option, add_mqtt_option, settings_from_args
from device.cli.listen import add_listen_options, print_event, save_utterances
from hal.player import WavOutput


def register(sub: Any) -> None:
    parser = sub.add_parser("run", help="run the speaker (the microphone, or --audio FILE and exit at its end)")
    add_listen_options(parser)
    add_mqtt_option(parser)
    add_cloud_option(parser)
    parser.add_argument("--speaker-wav", metavar="FILE", help="write what the speaker says to FILE instead of playing it")
    parser.set_defaults(func=run_appliance)


def run_appliance(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    outputs = [print_event(args.vad)]
    if args.save:
        outputs.append(save_utterances(args.save))
    speaker = WavOutput(args.speaker_wav) if args.speaker_wav else None
    return asyncio.run(run(settings, RunOptions(audio=args.audio, realtime=args.realtime), outputs, speaker=speaker))
