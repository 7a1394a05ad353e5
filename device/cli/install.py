"""`voxhome install [--destdir ROOT] [--uninstall [--purge]]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from device.system.install import InstallPlan, install, uninstall


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("install", help="install/upgrade as a systemd appliance (idempotent)")
    p.add_argument(
        "--root",
        "--destdir",
        "--prefix",
        dest="root",
        type=Path,
        default=Path("/"),
        help="install into this root (system steps are skipped unless it is /)",
    )
    p.add_argument(
        "--no-system", "--no-apt", action="store_true", help="skip apt, user, chown and systemctl"
    )
    p.add_argument("--no-venv", action="store_true", help="do not create /opt/voxhome/venv")
    p.add_argument("--uninstall", action="store_true", help="remove units and venv, keep data")
    p.add_argument("--purge", action="store_true", help="with --uninstall: also config and data")
    p.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    root = args.root.resolve()
    plan = InstallPlan(
        root=root, system=not args.no_system and root == Path("/"), venv=not args.no_venv
    )
    lines = uninstall(plan, purge=args.purge) if args.uninstall else install(plan)
    for line in lines:
        print(line)
    print("nothing to do" if not lines else f"{len(lines)} change(s)")
    return 0
