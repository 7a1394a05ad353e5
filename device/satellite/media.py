"""Home Assistant's TTS and announcement media: fetch a URL, decode it to 16 kHz mono, play it out.

HA hands the satellite a URL (its TTS proxy: mp3 by default, wav or flac when asked). libsndfile
(through soundfile) decodes all three (mp3 needs libsndfile >= 1.1); soxr resamples once, here at
the edge. The fetch is bounded in time and size: a media URL is not trusted to end.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import urllib.error
import urllib.request

import numpy as np
import soundfile as sf
import soxr

from device.errors import AudioError
from device.events import SAMPLE_RATE, AudioChunk
from hal.sink import AudioSink

log = logging.getLogger(__name__)

MAX_MEDIA_BYTES = 16 << 20
PLAYOUT_POLL_S = 0.02


def fetch(url: str, timeout_s: float = 10.0, max_bytes: int = MAX_MEDIA_BYTES) -> bytes:
    """GET the URL (http/https only); errors are `AudioError`s naming the URL."""
    if not url.startswith(("http://", "https://")):
        raise AudioError("ha-media-url", f"not an http(s) media URL: {url[:120]!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (scheme checked above)
            data: bytes = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise AudioError("ha-media-fetch", f"can't fetch {url[:120]}: {err}") from err
    if len(data) > max_bytes:
        raise AudioError("ha-media-fetch", f"{url[:120]} is larger than {max_bytes} bytes")
    return data


def decode(data: bytes, where: str = "media") -> np.ndarray:
    """Encoded audio (wav, flac, ogg, mp3) → float32 mono at 16 kHz."""
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        mp3 = data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
        if mp3 and "MP3" not in sf.available_formats():
            raise AudioError("ha-media-mp3", f"{where} is mp3 and this libsndfile ({sf.__libsndfile_version__}) "
                             "can't decode mp3; set HA's TTS format to wav or flac") from err
        raise AudioError("ha-media-decode", f"{where} is not audio libsndfile can decode: {err}") from err
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.asarray(mono, np.float32)


async def load(url: str, timeout_s: float = 10.0) -> np.ndarray:
    """Fetch and decode without blocking the loop."""
    data = await asyncio.to_thread(fetch, url, timeout_s)
    return await asyncio.to_thread(decode, data, url[:120])


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


async def play(sink: AudioSink, audio: np.ndarray, *, slack_s: float = 2.0) -> int:
    """Queue the audio and wait until it has been heard (or the sink stalls); ms played."""
    duration_ms = len(audio) * 1000 // SAMPLE_RATE
    base = sink.played_ms  # the sink counts its whole stream, which may hold earlier audio
    sink.play(AudioChunk(to_pcm16(audio)))
    sink.flush()
    deadline = time.monotonic() + duration_ms / 1000 + slack_s
    # The sink's player thread advances played_ms and signals nothing, so it is polled.
    while sink.played_ms - base < duration_ms and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(PLAYOUT_POLL_S)
    played = min(sink.played_ms - base, duration_ms)
    if played < duration_ms:
        log.warning("speaker played %d of %d ms of HA's audio", played, duration_ms)
    return played
