"""Fixtures for the satellite: spoken WAVs from espeak-ng, a local HTTP server for HA's TTS URLs,
and a sink that records what the speaker played (a real Player over a WAV file output)."""

from __future__ import annotations

import functools
import http.server
import io
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr


@functools.cache
def spoken(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of `text`: (float32 mono, its own rate, 22050 Hz)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


def utterance(text: str) -> bytes:
    """The command as the device hands it on: 16 kHz pcm16."""
    audio, rate = spoken(text)
    return (soxr.resample(audio, rate, 16000) * 32767).astype("<i2").tobytes()


def encoded(text: str, fmt: str) -> bytes:
    audio, rate = spoken(text)
    out = io.BytesIO()
    sf.write(out, audio, rate, format=fmt)
    return out.getvalue()


class MediaServer:
    """http.server on loopback serving byte blobs by path (HA's TTS proxy stands in for itself)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        """Every GET's path, in order (did the speaker fetch HA's URL?)."""
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                requests.append(self.path)
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def media() -> Iterator[MediaServer]:
    server = MediaServer()
    yield server
    server.close()


def played(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return np.asarray(audio)
