"""`voxhome listen`: wake word → command, one JSON line per event, from the mic or a file."""

from __future__ import annotations

import argparse
import asyncio
import signal
import wave
from pathlib import Path
from typing import Any

from device.cli.common import print_json, settings_from_args
from device.events import AudioStop, SpeechProbability, SpeechSoFar, VoiceStopped
from device.listening.frontend import Frontend
from device.listening.pipeline import Event
from device.service import Handler, Service, open_source


def register(sub: Any) -> None:
    parser = sub.add_parser("listen", help="listen for the wake word and cut out the command (JSON lines)")
    add_listen_options(parser)
    parser.set_defaults(func=run_listen)


def add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", metavar="FILE", help="read this audio file (any rate/channels) instead of the microphone")
    parser.add_argument("--realtime", action="store_true", help="pace a file like a live microphone")
    parser.add_argument("--save", metavar="DIR", help="write each command's audio to DIR as a WAV file")
    parser.add_argument("--vad", action="store_true", help="also print every VAD window (debugging)")


def print_event(show_vad: bool = False) -> Handler:
    def handle(event: Event) -> None:
        # The growing command (early endpointing's re-reads) is as frequent as the VAD windows.
        if isinstance(event, AudioStop) or (isinstance(event, SpeechProbability | SpeechSoFar) and not show_vad):
            return
        print_json(event)

    return handle


def save_utterances(directory: str) -> Handler:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    def handle(event: Event) -> None:
        if isinstance(event, VoiceStopped):
            with wave.open(str(out / f"utterance-{event.start_ms:09d}.wav"), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(16000)
                wav.writeframes(event.audio)

    return handle


def run_service(args: argparse.Namespace, handlers: list[Handler]) -> int:
    """Build source, models and pipeline from the settings and run until the source ends."""
    settings = settings_from_args(args)
    source = open_source(settings.audio.mic, args.audio, realtime=args.realtime)
    frontend = Frontend.from_settings(settings)
    if getattr(args, "save", None):
        handlers.append(save_utterances(args.save))
    service = Service(source, frontend, handlers)
    return asyncio.run(_run(service))


async def _run(service: Service) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)
    return await service.run()


def run_listen(args: argparse.Namespace) -> int:
    return run_service(args, [print_event(args.vad)])
