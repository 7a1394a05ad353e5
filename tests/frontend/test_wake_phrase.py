"""Wake phrases from text (models/wake_phrase.py): real EfficientWord-Net model, real TTS audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from device.bench.voices import Voice
from device.errors import ConfigError, ModelError
from device.events import Detection
from device.settings import WakeSettings, WakeWordSettings, settings_from_dict
from hal.audio import frames_from_pcm
from models.base import WakeModel
from models.wake_compose import CompositeWake, build_wake_model
from models.wake_phrase import WakePhraseDetector
from models.wake_phrase_enrol import enrol, renderings
from tests.frontend.conftest import pcm, silence, speech

AWB = Voice("flite", "awb")
"""A held-out voice: it never enrols, so hearing it is the real test."""
RP_F4 = Voice("espeak-ng", "en-gb-x-rp+f4")


def detect(detector: WakeModel, audio: bytes) -> list[Detection]:
    detector.reset()
    found: list[Detection] = []
    for chunk in frames_from_pcm(audio, 1600):
        found += detector.process_streaming(chunk.audio, chunk.timestamp_ms)
    return found


@pytest.fixture(scope="module")
def phrase_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # A fresh enrolment cache: the test enrols for real instead of reading an old one.
    path = tmp_path_factory.mktemp("phrases")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("models.wake_phrase_enrol.cache_root", lambda: path)
        yield path


@pytest.fixture(scope="module")
def hey_computer(phrase_cache: Path) -> Iterator[WakeModel]:
    model = build_wake_model(WakeSettings(words=(WakeWordSettings(phrase="Hey  Computer"),)))
    yield model
    model.close()


def test_enrols_from_text_and_caches_by_phrase(hey_computer: WakeModel, phrase_cache: Path) -> None:
    assert isinstance(hey_computer, WakePhraseDetector)
    assert hey_computer.words == ("hey computer",)
    assert len(list(phrase_cache.glob("*.npz"))) == 1
    again = enrol("hey computer")  # the cache: same references, no synthesis
    assert again.references.shape[0] >= 32 and len(set(again.voices)) >= 6


@pytest.mark.parametrize("voice", [AWB, RP_F4], ids=lambda v: v.label)
def test_fires_on_the_phrase_by_a_held_out_voice(hey_computer: WakeModel, voice: Voice) -> None:
    phrase = speech("hey computer", voice)
    audio = pcm(silence(1.0), phrase, silence(0.3), speech("turn on the kitchen light", voice), silence(1.0))
    found = detect(hey_computer, audio)
    assert [d.word for d in found] == ["hey computer"]
    assert 1000 < found[0].timestamp_ms <= 1000 + len(phrase) * 1000 // 16000 + 1000


def test_stays_quiet_on_other_speech(hey_computer: WakeModel) -> None:
    talk = [speech(t, v) for v in (AWB, RP_F4) for t in (
        "turn off all the lights downstairs and close the living room blinds",
        "the weather tomorrow will be cloudy with a chance of rain in the morning",
        "hello there, could you play some music in the bedroom please",
    )]
    assert detect(hey_computer, pcm(*[np.concatenate([t, silence(0.4)]) for t in talk])) == []


def test_silence_is_gated_and_costs_no_embedding(hey_computer: WakeModel) -> None:
    assert isinstance(hey_computer, WakePhraseDetector)
    before = hey_computer.embedder.runs
    assert detect(hey_computer, pcm(silence(3.0))) == []
    assert hey_computer.embedder.runs == before


def test_phrase_beside_a_model_word_runs_both(phrase_cache: Path) -> None:
    model = build_wake_model(WakeSettings(words=(WakeWordSettings("okay_nabu"), WakeWordSettings(phrase="hey computer"))))
    try:
        assert isinstance(model, CompositeWake)
        assert model.words == ("okay_nabu", "hey computer")
        audio = pcm(silence(0.5), speech("okay nabu"), silence(1.5), speech("hey computer", AWB), silence(1.0))
        assert sorted(d.word for d in detect(model, audio)) == ["hey computer", "okay_nabu"]
    finally:
        model.close()


@pytest.mark.parametrize("phrase", ["", "   ", "?!...", "x" * 65])
def test_a_phrase_without_words_is_a_config_error(phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"wake": {"words": [{"phrase": phrase}]}})
    assert err.value.code == "config-value" and "phrase" in str(err.value)


def test_enrolling_nothing_is_a_model_error(phrase_cache: Path) -> None:
    with pytest.raises(ModelError) as err:
        enrol("  ... ")
    assert err.value.code == "wake-phrase-empty"
    # flite has no sound for this symbol: nothing to enrol from, said clearly.
    with pytest.raises(ModelError) as err:
        renderings("〇", voices=[Voice("flite", "kal")])
    assert err.value.code == "wake-phrase-silent" and "no speech" in str(err.value)
