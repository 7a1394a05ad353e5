"""`voxhome run`: the appliance. For now it prints the front end's events; later stages
(speech recognition, home actions, the cloud) plug in as more handlers in `handlers()`."""

from __future__ import annotations

import argparse
from typing import Any

from device.cli.listen import add_listen_options, print_event, run_service
from device.service import Handler


def register(sub: Any) -> None:
    parser = sub.add_parser("run", help="run the speaker (the microphone, or --audio FILE and exit at its end)")
    add_listen_options(parser)
    parser.set_defaults(func=run_appliance)


def handlers(args: argparse.Namespace) -> list[Handler]:
    """Everything that reacts to the pipeline's events, in order."""
    return [print_event(args.vad)]


def run_appliance(args: argparse.Namespace) -> int:
    return run_service(args, handlers(args))
