"""`voxhome bench satellite`: the speaker as HA's voice satellite, on loopback, HA's own client.

Wake → HA: the real front end (wake word, VAD, endpointer) hears "okay nabu, <command>" paced
like a live microphone, and the clock runs from the wake word's detection to the first audio byte
at HA's client, and from the device's endpoint to the last. Mode 'ha' streams the command as it
is spoken; its peer in the same run is the endpointed utterance handed over after the device's
reading (mode 'local-first', and every mode before the live stream existed).

The seam on its own, per turn: from the device holding the endpointed utterance to (a) the first
and last audio byte at HA, and (b) from HA sending the TTS URL (`tts-end`) to the first sample of
the answer reaching the speaker's output. Peers: plaintext against Noise framing, a wav answer
against an mp3 one, and the floor of (b): a bare HTTP GET plus decode of the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.server
import io
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import soundfile as sf
import soxr

from device.bench.speech import concat, silence, synthesize
from device.events import Detection, VoiceStopped
from device.listening.frontend import Frontend
from device.satellite import media
from device.satellite.esphome_api import EsphomeServer
from device.satellite.live import SpokenAudio
from device.satellite.pipeline import HaTurns
from device.service import Service
from device.settings import EsphomeSettings, settings_from_dict
from hal.player import NullOutput, Player
from hal.source import FileSource

KEY = base64.b64encode(bytes(range(32))).decode()
COMMAND = "what is the weather like tomorrow"
ANSWER = "Tomorrow will be sunny with a high of twenty degrees."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--wake-turns", type=int, default=4, help="spoken turns per mode, in real time (~6 s each)")
    parser.add_argument("--json", action="store_true")


def _speech(text: str) -> tuple[Any, int]:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


class _Stamp(NullOutput):
    """An output that notes when the first sample arrives."""

    def __init__(self) -> None:
        super().__init__(realtime=False)
        self.first: float | None = None

    def write(self, audio: bytes) -> None:
        if self.first is None and any(audio):
            self.first = time.perf_counter()


def _serve(files: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = files[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


async def _subscribe(client: Any, server: Any, start: Any, stop: Any, audio: Any) -> None:
    """HA's client subscribes to the voice assistant; wait (≤ 5 s) until the device has seen it."""
    client.subscribe_voice_assistant(handle_start=start, handle_stop=stop, handle_audio=audio)
    for _ in range(500):
        if server.voice is not None:
            break
        await asyncio.sleep(0.01)


async def _turns(key: str | None, url: str, command: bytes, turns: int) -> dict[str, list[float]]:
    from aioesphomeapi import APIClient
    from aioesphomeapi.model import VoiceAssistantEventType as E

    server = EsphomeServer(EsphomeSettings(enabled=True, port=0, encryption_key=key), "bench-speaker")
    await server.start("127.0.0.1", announce=False)
    client = APIClient("127.0.0.1", server.port, None, noise_psk=key, client_info="bench", keepalive=60)
    await client.connect(login=True)
    marks: dict[str, float] = {}

    async def start(*_args: Any) -> int:
        return 0

    async def audio(data: bytes, _data2: bytes | None) -> None:
        marks.setdefault("first_byte", time.perf_counter())

    async def stop(abort: bool) -> None:
        marks["last_byte"] = time.perf_counter()
        for event, data in ((E.VOICE_ASSISTANT_RUN_START, None), (E.VOICE_ASSISTANT_STT_END, {"text": COMMAND}),
                            (E.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "c"}), (E.VOICE_ASSISTANT_TTS_START, {"text": ANSWER})):
            client.send_voice_assistant_event(event, data)
        marks["url"] = time.perf_counter()
        client.send_voice_assistant_event(E.VOICE_ASSISTANT_TTS_END, {"url": url})
        client.send_voice_assistant_event(E.VOICE_ASSISTANT_RUN_END, None)

    await _subscribe(client, server, start, stop, audio)
    out: dict[str, list[float]] = {"to_ha_first_byte_ms": [], "to_ha_last_byte_ms": [], "url_to_first_sample_ms": []}
    try:
        for _ in range(turns):
            stamp = _Stamp()
            player = Player(stamp)
            marks.clear()
            t0 = time.perf_counter()
            outcome = await HaTurns(server, player).turn(command)
            player.close()
            if outcome.status != "ok" or stamp.first is None:
                raise RuntimeError(f"turn failed: {outcome}")
            out["to_ha_first_byte_ms"].append((marks["first_byte"] - t0) * 1000)
            out["to_ha_last_byte_ms"].append((marks["last_byte"] - t0) * 1000)
            out["url_to_first_sample_ms"].append((stamp.first - marks["url"]) * 1000)
    finally:
        await client.disconnect()
        await server.close()
    return out


async def _wake_to_ha(live: bool, spoken: Path, url: str) -> dict[str, list[float]]:
    """One real-time pass of the spoken turns through the front end and the satellite."""
    from aioesphomeapi import APIClient
    from aioesphomeapi.model import VoiceAssistantEventType as E

    settings = settings_from_dict({})
    frontend = Frontend.from_settings(settings)
    server = EsphomeServer(EsphomeSettings(enabled=True, port=0), "bench-speaker")
    await server.start("127.0.0.1", announce=False)
    client = APIClient("127.0.0.1", server.port, None, client_info="bench", keepalive=60)
    await client.connect(login=True)
    player = Player(NullOutput(realtime=False))
    turns = HaTurns(server, player, live=SpokenAudio(frontend.pipeline.backlog, settings.vad.threshold) if live else None)
    marks: list[dict[str, float]] = []
    bytes_at_ha: list[int] = []

    async def start(*_args: Any) -> int:
        bytes_at_ha.append(0)
        return 0

    async def audio(data: bytes, _data2: bytes | None) -> None:
        marks[-1].setdefault("first_byte", time.perf_counter())
        bytes_at_ha[-1] += len(data)

    async def stop(abort: bool) -> None:
        marks[-1]["last_byte"] = time.perf_counter()
        client.send_voice_assistant_event(E.VOICE_ASSISTANT_RUN_START, None)
        client.send_voice_assistant_event(E.VOICE_ASSISTANT_TTS_END, {"url": url})
        client.send_voice_assistant_event(E.VOICE_ASSISTANT_RUN_END, None)

    await _subscribe(client, server, start, stop, audio)
    pending: list[asyncio.Task[Any]] = []

    async def handle(event: object) -> None:
        if isinstance(event, Detection):
            marks.append({"wake": time.perf_counter()})
        await turns.observe(event)
        if isinstance(event, VoiceStopped) and marks:
            marks[-1]["endpoint"] = time.perf_counter()
            pending.append(asyncio.create_task(turns.turn(event.audio)))

    try:
        await Service(FileSource(spoken, realtime=True), frontend, [handle]).run()
        outcomes = await asyncio.gather(*pending)
    finally:
        await client.disconnect()
        await server.close()
        player.close()
        frontend.close()
    if len(marks) != len(outcomes) or any(o.status != "ok" for o in outcomes):
        raise RuntimeError(f"wake turns failed: {len(marks)} wakes, {outcomes}")
    return {"wake_to_first_byte_ms": [(m["first_byte"] - m["wake"]) * 1000 for m in marks],
            "endpoint_to_last_byte_ms": [(m["last_byte"] - m["endpoint"]) * 1000 for m in marks],
            "audio_at_ha_ms": [n / 32 for n in bytes_at_ha]}


def _floor(url: str, turns: int) -> list[float]:
    times = []
    for _ in range(turns):
        t0 = time.perf_counter()
        media.decode(media.fetch(url))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def run(args: argparse.Namespace) -> int:
    if args.turns < 1 or args.wake_turns < 1:
        sys.stderr.write("--turns and --wake-turns must be at least 1\n")
        return 2
    voice, rate = _speech(COMMAND)
    command = (soxr.resample(voice, rate, 16000) * 32767).astype("<i2").tobytes()
    answer, answer_rate = _speech(ANSWER)
    files = {}
    for fmt in ("WAV", "MP3"):
        buf = io.BytesIO()
        sf.write(buf, answer, answer_rate, format=fmt)
        files[f"/answer.{fmt.lower()}"] = buf.getvalue()
    httpd = _serve(files)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    results: dict[str, dict[str, float]] = {}
    wake: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for gap in (0.4, 0.0):  # a pause after the wake word, and a command spoken straight on
                said = concat(synthesize("okay nabu"), silence(gap), synthesize(COMMAND), silence(3.0))
                sf.write(str(Path(tmp) / f"turns-{gap}.wav"), concat(silence(1.0), *[said] * args.wake_turns), 16000)
            for name, live, gap in (("live (mode ha)", True, 0.4), ("live (mode ha), no pause after the wake", True, 0.0),
                                    ("after the endpoint (local-first, before)", False, 0.4)):
                runs = asyncio.run(_wake_to_ha(live, Path(tmp) / f"turns-{gap}.wav", f"{base}/answer.wav"))
                wake[name] = {k: round(statistics.median(v), 1) for k, v in runs.items()}
        for name, key, fmt in (("plaintext wav", None, "wav"), ("noise wav", KEY, "wav"), ("noise mp3", KEY, "mp3")):
            runs = asyncio.run(_turns(key, f"{base}/answer.{fmt}", command, args.turns))
            results[name] = {k: round(statistics.median(v), 2) for k, v in runs.items()}
        for fmt in ("wav", "mp3"):
            results[f"peer: GET + decode {fmt}"] = {"url_to_first_sample_ms": round(statistics.median(_floor(f"{base}/answer.{fmt}", args.turns)), 2)}
    finally:
        httpd.shutdown()
        httpd.server_close()
    out = sys.stdout.write
    if args.json:
        out(json.dumps({"turns": args.turns, "wake_turns": args.wake_turns, "command_ms": 1000 * len(voice) // rate,
                        "wake_to_ha_ms": wake, "medians_ms": results}) + "\n")
        return 0
    out(f"Wake → HA, real front end paced like a microphone, median of {args.wake_turns} spoken turns\n")
    out(f"  {'':<42}{'wake → first byte':>19}{'endpoint → last byte':>22}{'audio at HA':>14}\n")
    for name, row in wake.items():
        out(f"  {name:<42}{row['wake_to_first_byte_ms']:>16.1f} ms{row['endpoint_to_last_byte_ms']:>19.1f} ms"
            f"{row['audio_at_ha_ms']:>11.0f} ms\n")
    out(f"HA satellite on loopback (aioesphomeapi client), {len(voice) * 1000 // rate} ms command, median of {args.turns} turns\n")
    out(f"  {'':<26}{'first byte at HA':>18}{'last byte at HA':>18}{'URL → first sample':>21}\n")
    for name, row in results.items():
        cells = [f"{row[k]:>15.2f} ms" if k in row else f"{'':>18}" for k in ("to_ha_first_byte_ms", "to_ha_last_byte_ms")]
        out(f"  {name:<26}{cells[0]}{cells[1]}{row['url_to_first_sample_ms']:>18.2f} ms\n")
    return 0
