"""`voxhome bench satellite`: the speaker as HA's voice satellite, on loopback, HA's own client.

Per turn it measures, from the moment the device holds the endpointed utterance (the assistant's
`VoiceStopped`, which is where HA's pipeline starts), (a) the first audio byte at HA and the last,
and (b) from HA sending the TTS URL (`tts-end`) to the first sample of the answer reaching the
speaker's output. Peers in the same run: plaintext against Noise framing, a wav answer against
an mp3 one, and the floor of (b): a bare HTTP GET plus decode of the same file.
Wake → first byte at HA is the command's length plus the endpointer plus (a): the seam hands HA
the endpointed utterance, it does not stream while the user speaks.
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
import threading
import time
from typing import Any

import soundfile as sf
import soxr

from device.satellite import media
from device.satellite.esphome_api import EsphomeServer
from device.satellite.pipeline import HaTurns
from device.settings import EsphomeSettings
from hal.player import NullOutput, Player

KEY = base64.b64encode(bytes(range(32))).decode()
COMMAND = "what is the weather like tomorrow"
ANSWER = "Tomorrow will be sunny with a high of twenty degrees."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--turns", type=int, default=10)
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

    client.subscribe_voice_assistant(handle_start=start, handle_stop=stop, handle_audio=audio)
    for _ in range(500):
        if server.voice is not None:
            break
        await asyncio.sleep(0.01)
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


def _floor(url: str, turns: int) -> list[float]:
    times = []
    for _ in range(turns):
        t0 = time.perf_counter()
        media.decode(media.fetch(url))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def run(args: argparse.Namespace) -> int:
    if args.turns < 1:
        sys.stderr.write("--turns must be at least 1\n")
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
    try:
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
        out(json.dumps({"turns": args.turns, "command_ms": 1000 * len(voice) // rate, "medians_ms": results}) + "\n")
        return 0
    out(f"HA satellite on loopback (aioesphomeapi client), {len(voice) * 1000 // rate} ms command, median of {args.turns} turns\n")
    out(f"  {'':<26}{'first byte at HA':>18}{'last byte at HA':>18}{'URL → first sample':>21}\n")
    for name, row in results.items():
        cells = [f"{row[k]:>15.2f} ms" if k in row else f"{'':>18}" for k in ("to_ha_first_byte_ms", "to_ha_last_byte_ms")]
        out(f"  {name:<26}{cells[0]}{cells[1]}{row['url_to_first_sample_ms']:>18.2f} ms\n")
    return 0
