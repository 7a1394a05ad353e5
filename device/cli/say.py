"""`voxhome say "turn on the kitchen light"`: text → local understanding → the home tools.

Prints JSON lines: the decision (tool call / not local / rejection, with its confidence), then the
tool result. A risky action answers 'needs_confirmation' unless `--yes` is given.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from device.cli.common import add_mqtt_option, print_json, settings_from_args
from device.events import ToolCall
from device.intent import Understanding
from device.tools.session import HomeSession


def register(sub: Any) -> None:
    parser = sub.add_parser("say", help="run a text command through local understanding and the home tools")
    parser.add_argument("text", help="what the user said, e.g. \"turn on the kitchen light\"")
    parser.add_argument("--yes", action="store_true", help="confirm a risky action (unlock, open the garage)")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="below this, leave it to the cloud")
    add_mqtt_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    return asyncio.run(_say(args))


async def _say(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    async with HomeSession(settings) as home:
        decision = Understanding(home.registry).understand(args.text)
        if decision.kind == "tool" and decision.confidence < args.min_confidence:
            print_json({**decision.to_json(), "kind": "not_local", "reason": "low confidence"})
            return 0
        print_json(decision.to_json())
        if decision.call is None:
            return 0
        call = ToolCall(decision.call.name, decision.call.arguments, call_id="say-1", source="local")
        result = await home.tools.execute(call, confirmed=args.yes)
        print_json(result)
        return 1 if result.status == "error" else 0
