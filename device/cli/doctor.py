"""`voxhome doctor [--json] [--bundle DIR]`: exit 1 when any check fails."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from device.cli.common import add_mqtt_option, settings_from_args
from device.system.doctor import run_checks


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check audio, models, broker, cloud, clock and disk")
    add_mqtt_option(p)
    p.add_argument(
        "--bundle",
        type=Path,
        action="append",
        metavar="DIR",
        help="verify this model bundle (default: the configured/installed ones)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    checks = run_checks(settings_from_args(args), bundles=args.bundle)
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{c.status:4}  {c.name:14} {c.detail}" + (f"  → {c.fix}" if c.fix else ""))
    return 1 if any(c.status == "fail" for c in checks) else 0
