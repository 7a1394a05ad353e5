"""`voxhome sim cloud --port N`: the fake realtime server for demos and manual tests.

Point the device at it with `--cloud-url ws://127.0.0.1:N/v1/realtime`. By default every request
is answered with one function call (turning a virtual light on, so the demo shows a tool call
changing a device) followed by a short spoken confirmation; `--replay FILE` serves a recorded
transcript instead. `--webrtc` also answers WebRTC calls (the device's `cloud.transport = "webrtc"`
with `cloud.base_url` set to the printed `base_url`), with `--loss`/`--jitter-ms`/`--rtt-ms` on
that link.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from device.cloud.fake_server import FakeRealtimeServer, Impairment, Reply

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--dialect", choices=("ga", "beta"), default="ga", help="wire dialect to speak")
    # The default call is one of the home tools (device/tools/tools.py) on a device of the demo
    # home, so the demo's cloud turn changes a virtual device.
    parser.add_argument("--tool", default="turn_on", help="function the model calls first ('' = none)")
    parser.add_argument("--arguments", default='{"entity": "light.living_room_lamp"}',
                        help="JSON arguments of that call")
    parser.add_argument("--say", default="There you go, the living room lamp is on.", help="transcript of the spoken reply")
    parser.add_argument("--audio-ms", type=int, default=1200, help="length of the spoken reply")
    parser.add_argument("--replay", metavar="FILE", help="serve a realtime-events transcript instead")
    parser.add_argument("--reject-beta", action="store_true", help="answer the beta header with close 4000, like OpenAI")
    parser.add_argument("--webrtc", action="store_true", help="also answer WebRTC calls (an HTTP calls endpoint, aiortc)")
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of reply packets lost (0-0.5)")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="reply packets up to this much late")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round-trip time added to the link")


def run(args: argparse.Namespace) -> int:
    try:
        json.loads(args.arguments)
    except ValueError:
        sys.stderr.write(f"--arguments is not JSON: {args.arguments!r}\n")
        return 2
    if args.replay and not Path(args.replay).is_file():
        sys.stderr.write(f"no such transcript: {args.replay}\n")
        return 2
    if not (0 <= args.loss <= 0.5 and args.jitter_ms >= 0 and args.rtt_ms >= 0):
        sys.stderr.write("--loss must be 0-0.5, --jitter-ms and --rtt-ms at least 0\n")
        return 2
    replies = [Reply(text=args.say, audio_ms=args.audio_ms)]
    if args.tool:
        replies.insert(0, Reply(calls=((args.tool, args.arguments),)))
    server = FakeRealtimeServer(
        dialect=args.dialect, replies=replies, cycle=True, host=args.host, port=args.port,
        replay=Path(args.replay) if args.replay else None, reject_beta=args.reject_beta,
        webrtc=args.webrtc, impairment=Impairment(loss=args.loss, jitter_ms=args.jitter_ms, rtt_ms=args.rtt_ms),
    )

    async def serve() -> None:
        await server.start()
        listening = {"type": "listening", "url": server.url, "dialect": args.dialect}
        if args.webrtc:
            listening["base_url"] = server.base_url
        sys.stdout.write(json.dumps(listening) + "\n")
        sys.stdout.flush()
        await server.serve_forever()

    try:
        asyncio.run(serve())
    except OSError as err:
        sys.stderr.write(f"can't listen on {args.host}:{args.port}: {err.strerror}\n")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    _parser = argparse.ArgumentParser(prog="python -m device.sim.cloud")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
