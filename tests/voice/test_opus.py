from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.errors import AudioError
from hal.opus import decode_ogg_opus, encode_ogg_opus, ogg_crc, read_ogg_opus, read_pages


def _signal(seconds: float = 1.3) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)


def test_crc_is_oggs_crc32() -> None:
    # CRC-32 with polynomial 0x04c11db7, init 0, no reflection, no final xor ("123456789" check value).
    assert ogg_crc(b"123456789") == 0x89A1897F


@pytest.mark.parametrize("seconds", [0.013, 0.5, 1.3, 3.1])
def test_round_trip_keeps_length_and_waveform(seconds: float) -> None:
    audio = _signal(seconds)
    data = encode_ogg_opus(audio)
    assert data.startswith(b"OggS")
    pages = read_pages(data)
    assert pages[0].flags & 2 and pages[-1].flags & 4
    assert pages[0].body.startswith(b"OpusHead") and pages[1].body.startswith(b"OpusTags")
    # Granule positions count 48 kHz samples and never go backwards.
    granules = [p.granule for p in pages]
    assert granules == sorted(granules)
    decoded = decode_ogg_opus(data)
    assert len(decoded) == len(audio)
    if seconds > 0.1:
        assert np.corrcoef(audio, decoded)[0, 1] > 0.99


def test_corrupt_byte_fails_crc() -> None:
    data = bytearray(encode_ogg_opus(_signal()))
    data[len(data) // 2] ^= 0x55
    with pytest.raises(AudioError) as err:
        decode_ogg_opus(bytes(data))
    assert err.value.code == "audio-bad-opus"


@pytest.mark.parametrize("mangle", [lambda d: d[: len(d) - 7], lambda d: b"RIFF" + d[4:], lambda d: b"", lambda d: d[:30]])
def test_truncated_or_foreign_data_is_an_audio_error(mangle: object) -> None:
    data = encode_ogg_opus(_signal())
    with pytest.raises(AudioError):
        decode_ogg_opus(mangle(data))  # type: ignore[operator]


def test_missing_page_is_detected() -> None:
    data = encode_ogg_opus(_signal(3.0))
    pages = read_pages(data)
    assert len(pages) >= 4
    kept = b"".join(p.to_bytes() for i, p in enumerate(pages) if i != 2)
    with pytest.raises(AudioError, match="missing"):
        decode_ogg_opus(kept)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError):
        read_ogg_opus(tmp_path / "nope.opus")
