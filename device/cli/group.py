"""Commands with named parts (`voxhome bench asr`, `voxhome models build asr`, `voxhome sim home`).

Each part is a module with `add_arguments(parser)` and `run(args) -> int`, imported only when
chosen: a benchmark's heavy imports (faster-whisper, onnx) never slow down `voxhome run`.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any


def register_group(sub: Any, name: str, help_text: str, parts: dict[str, str]) -> None:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("part", choices=sorted(parts), help="which one")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=lambda args: _run_part(args, name, parts))


def _run_part(args: argparse.Namespace, name: str, parts: dict[str, str]) -> int:
    return run_module(parts[args.part], f"{name} {args.part}", args)


def run_module(module_name: str, prog: str, args: argparse.Namespace) -> int:
    """Import a part's module, parse the remaining arguments with its parser, and run it."""
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"voxhome {prog}")
    module.add_arguments(parser)
    part_args = parser.parse_args(args.rest)
    # Global options (--config, -v) travel along for parts that read settings.
    for key in ("config", "verbose"):
        if not hasattr(part_args, key):
            setattr(part_args, key, getattr(args, key))
    return int(module.run(part_args) or 0)
