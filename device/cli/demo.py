"""`voxhome demo`: the whole speaker on synthesized speech, with a virtual home and a fake cloud.

It starts a private mosquitto on a free loopback port, the virtual home (`voxhome sim home`) and
the fake realtime server (`voxhome sim cloud`), synthesizes a few spoken turns with espeak-ng,
and runs the appliance on that audio exactly as `voxhome run --audio FILE` would, printing one
JSON line per event. At the end it prints the virtual devices' states and where the speaker's
output was saved. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from device.appliance import RunOptions, run
from device.bench.speech import VOICES, concat, silence, synthesize
from device.cli.common import print_json
from device.cli.listen import print_event
from device.settings import Secret, Settings, replace_path
from device.sim.broker import Mosquitto
from device.tools.session import HomeSession
from hal.player import WavOutput

# (what the user says after the wake word, seconds of quiet after it)
SCRIPT: tuple[tuple[str, float], ...] = (
    ("turn on the kitchen light", 1.5),
    ("set the thermostat to 21 degrees", 1.5),
    ("unlock the front door", 1.2),
    ("yes", 1.5),
    ("what is the tallest mountain in the world", 1.5),
)
WAKE = "okay nabu"
WATCH = ("light.kitchen_light", "climate.thermostat", "lock.front_door", "light.living_room_lamp")


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the whole speaker on synthesized speech with a virtual home and cloud")
    parser.add_argument("--keep", metavar="DIR", help="keep the demo's audio files in DIR")
    parser.add_argument("--cloud-transport", choices=("websocket", "webrtc"), default="websocket",
                        help="how the cloud turn travels (webrtc: Opus over RTP, events on a data channel)")
    parser.set_defaults(func=run_demo)


def demo_audio() -> np.ndarray:
    """The user's side of the demo: each turn is the wake word then the command (except the
    spoken "yes", which answers the speaker's question without a wake word)."""
    voice = VOICES[0]
    parts = [silence(1.0)]
    for text, pause in SCRIPT:
        if text != "yes":
            parts += [synthesize(WAKE, voice), silence(0.25)]
        parts += [synthesize(text, voice), silence(pause)]
    return concat(*parts)


def run_demo(args: argparse.Namespace) -> int:
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="voxhome-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    audio_path = workdir / "user.wav"
    soundfile.write(str(audio_path), demo_audio(), 16000, subtype="PCM_16")
    print_json({"type": "demo", "step": "audio", "path": str(audio_path), "turns": [t for t, _ in SCRIPT]})

    broker = Mosquitto(workdir)
    broker.start()
    home = subprocess.Popen(
        [sys.executable, "-m", "device.sim.home", "--mqtt", broker.url], stdout=subprocess.PIPE, text=True
    )
    webrtc = ["--webrtc"] if args.cloud_transport == "webrtc" else []
    cloud = subprocess.Popen([sys.executable, "-m", "device.sim.cloud", "--port", "0", *webrtc],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert home.stdout is not None and cloud.stdout is not None
        home_ready = json.loads(home.stdout.readline())
        cloud_ready = json.loads(cloud.stdout.readline())
        print_json({"type": "demo", "step": "ready", "broker": broker.url, "cloud": cloud_ready["url"],
                    "devices": len(home_ready["entities"])})
        settings = demo_settings(broker, cloud_ready["url"])
        if webrtc:
            settings = replace_path(replace_path(settings, "cloud.transport", "webrtc"), "cloud.base_url", cloud_ready["base_url"])
        speaker_path = workdir / "speaker.wav"
        status = asyncio.run(
            run(settings, RunOptions(audio=str(audio_path)), [print_event()], speaker=WavOutput(speaker_path))
        )
        states = asyncio.run(device_states(settings))
        print_json({"type": "demo", "step": "done", "states": states, "speaker_audio": str(speaker_path)})
        return status
    finally:
        for proc in (home, cloud):
            proc.terminate()
            proc.wait(10)
        broker.stop()


def demo_settings(broker: Mosquitto, cloud_url: str) -> Settings:
    os.environ.setdefault("VOXHOME_DEMO_KEY", "demo-not-a-secret")
    settings = Settings()
    for key, value in (
        ("device.id", "voxhome-demo"),
        ("mqtt.host", broker.host),
        ("mqtt.port", broker.port),
        ("cloud.url", cloud_url),
        # The fake server checks no key, but the client never connects without one.
        ("cloud.api_key", Secret(env="VOXHOME_DEMO_KEY")),
    ):
        settings = replace_path(settings, key, value)
    return settings


async def device_states(settings: Settings) -> dict[str, dict[str, Any]]:
    settings = replace_path(settings, "device.id", "voxhome-demo-observer")
    async with HomeSession(settings) as home:
        return {entity: home.registry.state(entity).values for entity in WATCH}
