"""The second wake stage on the real Whisper bundle: rendered wake phrases pass, a near miss and an
ordinary sentence don't, and the front end drops a first-stage hit the verifier rejects.

Cases picked from `voxhome bench wake-verify`'s tuning-voice numbers where the verifier separates
them (it does not for most okay_nabu near misses: see the README)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from device.bench.speech import VOICES
from device.errors import ModelError
from device.events import Detection
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.settings import VadSettings, WakeWordSettings
from hal.audio import float_to_pcm16, frames_from_pcm
from models.asr.factory import ensure_asr_bundle
from models.asr.runner import WhisperOnnx
from models.vad import SileroVad
from models.wake import WakeWordDetector, resolve_word
from models.wake_verify import PhraseGraph, WakeVerifier
from tests.frontend.conftest import concat, silence, speech

EN_US, EN_US_F3 = VOICES[0], VOICES[2]


@pytest.fixture(scope="module")
def verifier() -> WakeVerifier:
    return WakeVerifier(WhisperOnnx.load(ensure_asr_bundle()), ["okay_nabu", "alexa"])


def window(text: str, voice: object = EN_US) -> np.ndarray:
    """What the verifier gets: the phrase with the pause before it, ending shortly after it (where the detector fires)."""
    return concat(silence(0.3), speech(text, voice), silence(0.15))  # type: ignore[arg-type]


def test_the_phrase_graph_is_the_phrases_alone() -> None:
    graph = PhraseGraph(["okay nabu", "OK, Nabu"])
    (start,) = graph.starts()
    assert sorted(t for t, _, _ in graph.arcs(start)) == ["ok", "okay"]
    okay = next(s for t, _, s in graph.arcs(start) if t == "okay")
    assert not graph.is_final(okay)
    (nabu,) = graph.arcs(okay)
    assert nabu[0] == "nabu" and nabu[1] and graph.is_final(nabu[2])
    assert set(graph.vocabulary()) == {"okay", "ok", "nabu"}
    with pytest.raises(ModelError):
        PhraseGraph(["..."])


def test_wake_phrases_pass_a_sentence_does_not_and_a_near_miss_scores_between(verifier: WakeVerifier) -> None:
    okay = verifier.score("okay_nabu", window("okay nabu", EN_US_F3))
    sentence = verifier.score("okay_nabu", window("please call my mother"))
    assert okay.accepted and not sentence.accepted
    assert "nabu" in okay.phrase_text.lower()
    assert okay.gap < sentence.gap - 2.0
    alexa = verifier.score("alexa", window("alexa"))
    miss = verifier.score("alexa", window("uhleksis"))
    # Whether one near miss lands under the calibrated threshold (1.75) depends on its rendering:
    # espeak-ng 1.51's "uhleksis" scores 1.68, other builds' more. How often near misses pass is
    # what `voxhome bench wake-verify` measures; here it must score further from the phrase than
    # the phrase does, and nearer than an unrelated sentence.
    assert alexa.accepted
    assert alexa.gap + 0.5 < miss.gap < verifier.score("alexa", window("please call my mother")).gap
    # Silence is never the phrase, and needs no model run.
    quiet = verifier.score("alexa", np.zeros(24000, np.float32))
    assert not quiet.accepted and quiet.ms == 0.0
    with pytest.raises(ModelError):
        verifier.score("hey_jarvis", window("hey jarvis"))


@pytest.fixture()
def eager_alexa() -> Iterator[WakeWordDetector]:
    """The first stage at a low cutoff, as the verifier lets it run: it fires on the near miss."""
    detector = WakeWordDetector([resolve_word(WakeWordSettings("alexa", threshold=0.3))])
    yield detector
    detector.close()


def detections(frontend: Frontend, audio: np.ndarray) -> list[Detection]:
    frontend.wake.reset()
    events: list[object] = []
    position = 0
    for chunk in frames_from_pcm(float_to_pcm16(audio)):
        events += frontend.process(chunk)
        position = chunk.end_ms
    events += frontend.finish(position)
    return [e for e in events if isinstance(e, Detection)]


def test_the_frontend_drops_a_rejected_hit_and_passes_the_wake_word(eager_alexa: WakeWordDetector,
                                                                     verifier: WakeVerifier) -> None:
    miss = concat(silence(0.6), speech("uhleksis"), silence(1.5))
    alone = Frontend(eager_alexa, SileroVad.from_builtin(), Pipeline(VadSettings()))
    assert [d.word for d in detections(alone, miss)] == ["alexa"]  # the first stage alone wakes
    checked = Frontend(eager_alexa, SileroVad.from_builtin(), Pipeline(VadSettings()), verifier)
    assert detections(checked, miss) == []
    assert checked.rejected == 1
    wake = concat(silence(0.6), speech("alexa"), silence(0.3), speech("turn on the kitchen light"), silence(1.5))
    checked = Frontend(eager_alexa, SileroVad.from_builtin(), Pipeline(VadSettings()), verifier)
    assert [d.word for d in detections(checked, wake)] == ["alexa"]
    assert checked.rejected == 0
