"""`voxhome`: the command line. argparse → Settings → the chosen command.

Each command lives in its own module under `device/cli/` with `register(subparsers)`; this file
only assembles them, sets up logging and turns a `VoxError` into one clear line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from device.errors import VoxError
from device.system.logs import setup_logging

# One module per top-level command; each exposes register(subparsers).
COMMANDS: tuple[str, ...] = (
    "device.cli.listen",
    "device.cli.run",
    "device.cli.bench",
    "device.cli.models",
    "device.cli.sim",
    "device.cli.transcribe",
    "device.cli.say",
    "device.cli.demo",
    "device.cli.ota",
    "device.cli.install",
    "device.cli.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxhome", description="voxhome smart-speaker firmware")
    parser.add_argument("--config", metavar="PATH", help="config file (default /etc/voxhome/config.toml)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Structured journal entries under systemd, stderr lines elsewhere; stdout carries JSON lines.
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except VoxError as err:
        print(f"voxhome: error [{err.code}]: {err.message}", file=sys.stderr)
        return 2
    except OSError as err:
        # A path the config names that can't be written or read (a read-only or missing state
        # directory, a device node that went away): one line that says which, not a traceback.
        where = f" {err.filename}" if err.filename else ""
        print(f"voxhome: error [io-error]: {err.strerror or err}:{where} (check the path and its permissions in the config)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
