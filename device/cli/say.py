"""`voxhome say "turn on the kitchen light"`: text → local understanding → the home tools.

Prints JSON lines: the decision (tool call / not local / rejection, with its confidence), then the
tool result. A risky action answers 'needs_confirmation' unless `--yes` is given.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from device.appliance import build_language, build_voice, load_language, open_speaker
from device.cli.common import add_mqtt_option, print_json, settings_from_args
from device.events import Say, Spoke, ToolCall
from device.settings import Settings
from device.tools.session import HomeSession
from device.voice.speaker import say_for_result
from hal.player import Player, WavOutput


def register(sub: Any) -> None:
    parser = sub.add_parser("say", help="run a text command through local understanding and the home tools")
    parser.add_argument("text", help="what the user said, e.g. \"turn on the kitchen light\"")
    parser.add_argument("--yes", action="store_true", help="confirm a risky action (unlock, open the garage)")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="below this, leave it to the cloud")
    parser.add_argument("--speaker-wav", metavar="FILE", help="write the spoken answer to FILE instead of the speaker")
    parser.add_argument("--quiet", action="store_true", help="don't speak the answer")
    add_mqtt_option(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    return asyncio.run(_say(args))


async def _say(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    templates = load_language(settings)  # a bad sentence file is found before the broker is tried
    async with HomeSession(settings) as home:
        language = build_language(settings, home.registry, templates)
        decision = language.understand(args.text)
        if decision.kind == "tool" and decision.confidence < args.min_confidence:
            print_json({**decision.to_json(), "kind": "not_local", "reason": "low confidence"})
            return 0
        print_json(decision.to_json())
        if decision.call is None:
            if decision.kind == "reject":
                await _speak(args, settings, Say(prompt="unknown_device", text=decision.message))
            elif decision.kind == "answer" and decision.message:
                await _speak(args, settings, Say(prompt="done", text=decision.message))
            return 0
        call = ToolCall(decision.call.name, decision.call.arguments, call_id="say-1", source="local")
        result = await home.tools.execute(call, confirmed=args.yes)
        print_json(result)
        answer = language.answer(decision, result)
        await _speak(args, settings, Say(prompt="done", text=answer) if answer else say_for_result(result))
        return 1 if result.status == "error" else 0


async def _speak(args: argparse.Namespace, settings: Settings, say: Say) -> None:
    """Say the answer through the speaker (or into --speaker-wav) and report how long it spoke."""
    if args.quiet:
        return
    player = Player(WavOutput(args.speaker_wav) if args.speaker_wav else open_speaker(settings), settings.audio.speaker)
    try:
        voice = await asyncio.to_thread(build_voice, settings, player)
        spoken = await asyncio.to_thread(voice.say, say)
        await asyncio.to_thread(player.drain)
        print_json(Spoke(spoken.prompt, spoken.text, spoken.duration_ms, spoken.synth_ms))
    finally:
        player.close()
