"""Whisper's log-mel front end and tokenizer, checked against known values from the reference code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.errors import ModelError
from models.asr.mel import HOP, MAX_FRAMES, LogMel, hz_to_mel, mel_filterbank, mel_to_hz
from models.asr.tokenizer import Tokenizer


def test_mel_scale_is_slaney() -> None:
    assert hz_to_mel(np.array(1000.0)) == pytest.approx(15.0)
    assert hz_to_mel(np.array(200.0)) == pytest.approx(3.0)
    hz = np.array([0.0, 500.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, atol=1e-6)


def test_filterbank_shape_and_normalisation() -> None:
    filters = mel_filterbank()
    assert filters.shape == (80, 201) and (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[0] <= 2 and peaks[-1] >= 190
    # Slaney norm: every triangle has unit area in Hz (bins are 40 Hz apart), up to edge effects.
    area = filters.sum(axis=1) * 40.0
    np.testing.assert_allclose(area[1:-1], 1.0, rtol=0.1)


def test_matches_faster_whispers_features() -> None:
    fe = pytest.importorskip("faster_whisper.feature_extractor").FeatureExtractor(feature_size=80)
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    ours = LogMel()(audio)
    np.testing.assert_allclose(ours, fe(audio, padding=0)[:, : ours.shape[1]], atol=1e-4)
    np.testing.assert_allclose(LogMel().filters, fe.mel_filters, atol=1e-6)


def test_tone_lands_in_its_band_and_lengths() -> None:
    t = np.arange(16000) / 16000
    mel = LogMel()(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert mel.shape == (80, 16000 // HOP)
    centers = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(8000.0)), 82))[1:-1]
    assert abs(centers[int(mel[:, 50].argmax())] - 1000) < 60
    assert LogMel()(np.zeros(0, np.float32)).shape == (80, 0)
    assert LogMel()(np.zeros(100, np.float32), pad_samples=320).shape == (80, 2)
    assert LogMel()(np.zeros(16000 * 40, np.float32)).shape == (80, MAX_FRAMES)


@pytest.fixture(scope="module")
def tokenizer(asr_bundle: Path) -> Tokenizer:
    return Tokenizer.load(asr_bundle / "tokenizer.npz")


def test_encodes_like_the_reference_tokenizer(tokenizer: Tokenizer) -> None:
    # Ids from Hugging Face `tokenizers` on the same tokenizer.json.
    assert tokenizer.encode(" Turn on the kitchen light.") == [6756, 319, 262, 9592, 1657, 13]
    assert tokenizer.encode(" Dim the living-room lamp to 50%.") == [14048, 262, 2877, 12, 3823, 20450, 284, 2026, 7225]
    assert tokenizer.encode(" Don't lock the front door, please!") == [2094, 470, 5793, 262, 2166, 3420, 11, 3387, 0]


def test_round_trip_and_specials(tokenizer: Tokenizer) -> None:
    for text in (" Set the thermostat to 21 degrees.", " Café naïve 3.5 x_y 日本語", "  two  spaces "):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert (tokenizer.sot, tokenizer.eot, tokenizer.no_timestamps, tokenizer.no_speech) == (50257, 50256, 50362, 50361)
    assert tokenizer.decode([6756, tokenizer.eot, 319]) == " Turn on"  # control tokens are not text
    assert tokenizer.token_id(".") == 13 and tokenizer.token_id("no such token") is None
    assert tokenizer.vocab_size == 51864


def test_damaged_tokenizer_names_the_file(asr_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.npz"
    path.write_bytes((asr_bundle / "tokenizer.npz").read_bytes()[:5000])
    with pytest.raises(ModelError) as err:
        Tokenizer.load(path)
    assert str(path) in err.value.message
