"""Ogg Opus for the device's prompts: a small Ogg page writer/reader (RFC 3533) plus opuslib.

Prompts are 16 kHz mono; Ogg Opus granule positions always count 48 kHz samples (RFC 7845), so
one 16 kHz sample is 3 granule units. We write and read the container ourselves (no ffmpeg,
no libogg binding): it is a few dozen lines, and every failure becomes an `AudioError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opuslib

from device.errors import AudioError
from hal.audio import SAMPLE_RATE, float_to_pcm16, pcm16_to_float

FRAME_SAMPLES = SAMPLE_RATE // 50
"""20 ms Opus frames at 16 kHz."""
GRANULE_PER_SAMPLE = 48000 // SAMPLE_RATE
PACKETS_PER_PAGE = 50
VENDOR = b"voxhome"
_MAX_FRAME = SAMPLE_RATE * 120 // 1000
"""The longest Opus packet (120 ms) in 16 kHz samples."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class OggPage:
    flags: int
    granule: int
    serial: int
    sequence: int
    segments: tuple[int, ...]
    body: bytes

    CONTINUED = 1
    FIRST = 2
    LAST = 4

    def to_bytes(self) -> bytes:
        header = struct.pack(
            "<4sBBqIIIB", b"OggS", 0, self.flags, self.granule, self.serial, self.sequence, 0, len(self.segments)
        )
        page = header + bytes(self.segments) + self.body
        crc = ogg_crc(page)
        return page[:22] + struct.pack("<I", crc) + page[26:]


def _lacing(packet: bytes) -> list[int]:
    # A packet whose length is a multiple of 255 needs a closing 0 so the reader knows it ended.
    return [255] * (len(packet) // 255) + [len(packet) % 255]


def write_pages(packets: list[tuple[bytes, int]], serial: int = 0x766F78) -> bytes:
    """Ogg stream from (packet, granule after it) pairs; the first two packets get pages of their own."""
    out = bytearray()
    seq = 0
    groups: list[list[tuple[bytes, int]]] = [[p] for p in packets[:2]]
    rest = packets[2:]
    groups += [rest[i : i + PACKETS_PER_PAGE] for i in range(0, len(rest), PACKETS_PER_PAGE)]
    for index, group in enumerate(groups):
        segments: list[int] = []
        for packet, _ in group:
            segments += _lacing(packet)
        if len(segments) > 255:
            raise AudioError("audio-bad-opus", "an Opus packet is too large for one Ogg page")
        flags = (OggPage.FIRST if index == 0 else 0) | (OggPage.LAST if index == len(groups) - 1 else 0)
        page = OggPage(flags, group[-1][1], serial, seq, tuple(segments), b"".join(p for p, _ in group))
        out += page.to_bytes()
        seq += 1
    return bytes(out)


def read_pages(data: bytes) -> list[OggPage]:
    """Parse and CRC-check every page; anything malformed is an AudioError."""
    pages: list[OggPage] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 27 or data[pos : pos + 4] != b"OggS":
            raise AudioError("audio-bad-opus", f"no Ogg page at byte {pos}")
        _, version, flags, granule, serial, seq, crc, nseg = struct.unpack_from("<4sBBqIIIB", data, pos)
        if version != 0:
            raise AudioError("audio-bad-opus", f"unknown Ogg version {version}")
        seg_end = pos + 27 + nseg
        segments = tuple(data[pos + 27 : seg_end])
        end = seg_end + sum(segments)
        if len(segments) != nseg or end > len(data):
            raise AudioError("audio-bad-opus", f"Ogg page at byte {pos} is truncated")
        raw = data[pos:end]
        if ogg_crc(raw[:22] + b"\0\0\0\0" + raw[26:]) != crc:
            raise AudioError("audio-bad-opus", f"Ogg page {seq} fails its CRC check")
        pages.append(OggPage(flags, granule, serial, seq, segments, data[seg_end:end]))
        pos = end
    if not pages:
        raise AudioError("audio-bad-opus", "empty Ogg stream")
    return pages


def packets_of(pages: list[OggPage]) -> list[tuple[bytes, int]]:
    """Reassemble packets (which may span pages) as (packet, granule of the page that ends it)."""
    out: list[tuple[bytes, int]] = []
    pending = bytearray()
    expected_seq = pages[0].sequence
    for page in pages:
        if page.sequence != expected_seq:
            raise AudioError("audio-bad-opus", f"Ogg page {expected_seq} is missing")
        expected_seq += 1
        if pending and not page.flags & OggPage.CONTINUED:
            raise AudioError("audio-bad-opus", f"Ogg page {page.sequence} drops a continued packet")
        pos = 0
        for lace in page.segments:
            pending += page.body[pos : pos + lace]
            pos += lace
            if lace < 255:
                out.append((bytes(pending), page.granule))
                pending.clear()
    if pending:
        raise AudioError("audio-bad-opus", "the Ogg stream ends inside a packet")
    return out


def _opus_head(pre_skip: int) -> bytes:
    return struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, pre_skip, SAMPLE_RATE, 0, 0)


def _opus_tags() -> bytes:
    return b"OpusTags" + struct.pack("<I", len(VENDOR)) + VENDOR + struct.pack("<I", 0)


def encode_ogg_opus(audio: np.ndarray, bitrate: int = 24000) -> bytes:
    """float32 mono 16 kHz → Ogg Opus bytes."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    encoder = opuslib.Encoder(SAMPLE_RATE, 1, opuslib.APPLICATION_AUDIO)
    encoder.bitrate = bitrate
    lookahead = encoder.lookahead  # 16 kHz samples of codec delay
    total = len(audio)
    # Flush the codec delay out of the encoder by padding, then trim it via pre-skip / final granule.
    padded_len = -(-(total + lookahead) // FRAME_SAMPLES) * FRAME_SAMPLES
    pcm = float_to_pcm16(np.concatenate([audio, np.zeros(padded_len - total, np.float32)]))
    pre_skip = lookahead * GRANULE_PER_SAMPLE
    packets: list[tuple[bytes, int]] = [(_opus_head(pre_skip), 0), (_opus_tags(), 0)]
    frame_bytes = FRAME_SAMPLES * 2
    for i in range(0, len(pcm), frame_bytes):
        done = i // 2 + FRAME_SAMPLES
        granule = min(done, total + lookahead) * GRANULE_PER_SAMPLE
        packets.append((encoder.encode(pcm[i : i + frame_bytes], FRAME_SAMPLES), granule))
    return write_pages(packets)


def decode_ogg_opus(data: bytes) -> np.ndarray:
    """Ogg Opus bytes → float32 mono 16 kHz; AudioError when the stream is not valid Ogg Opus."""
    packets = packets_of(read_pages(data))
    if len(packets) < 2 or not packets[0][0].startswith(b"OpusHead") or len(packets[0][0]) < 19:
        raise AudioError("audio-bad-opus", "the stream does not start with an OpusHead")
    if not packets[1][0].startswith(b"OpusTags"):
        raise AudioError("audio-bad-opus", "the OpusHead is not followed by OpusTags")
    _, version, channels, pre_skip, _, _, family = struct.unpack_from("<8sBBHIhB", packets[0][0])
    if version >> 4 != 0 or channels not in (1, 2) or family != 0:
        raise AudioError("audio-bad-opus", f"unsupported Opus stream (channels={channels}, mapping={family})")
    decoder = opuslib.Decoder(SAMPLE_RATE, channels)
    parts: list[bytes] = []
    try:
        for packet, _ in packets[2:]:
            parts.append(decoder.decode(packet, _MAX_FRAME))
    except opuslib.OpusError as err:
        raise AudioError("audio-bad-opus", f"Opus packet does not decode: {err}") from None
    pcm = np.frombuffer(b"".join(parts), dtype="<i2").reshape(-1, channels).mean(axis=1)
    audio = pcm.astype(np.float32) / 32768.0
    final_granule = packets[-1][1]
    start = pre_skip // GRANULE_PER_SAMPLE
    end = max(start, final_granule // GRANULE_PER_SAMPLE)
    return audio[start:end]


def read_ogg_opus(path: Path) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise AudioError("audio-bad-opus", f"can't read {path}: {err.strerror}") from None
    return decode_ogg_opus(data)


def write_ogg_opus(path: Path, audio: np.ndarray) -> None:
    Path(path).write_bytes(encode_ogg_opus(audio))


__all__ = ["decode_ogg_opus", "encode_ogg_opus", "ogg_crc", "pcm16_to_float", "read_ogg_opus", "write_ogg_opus"]
