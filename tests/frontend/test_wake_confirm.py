"""The two-stage wake word (microWakeWord + openWakeWord confirming) on real models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from device.bench.wake.cascade import Cascade, Rule, calibrate
from device.bench.wake.dataset import Clip
from device.bench.wake.evaluate import Scored
from device.bench.wake.traces import Scorers, Trace
from device.errors import ModelError
from device.settings import WakeSettings, WakeWordSettings
from models.wake import WakeWordDetector, micro_models_dir, oww_models_dir, resolve_word
from models.wake_confirm import CALIBRATED, Confirm
from tests.frontend.conftest import SLT, pcm, silence, speech
from tests.frontend.test_wake import detect


def _jarvis(sure: float, first: float, cutoff: float) -> WakeWordDetector:
    spec = resolve_word(WakeWordSettings("hey_jarvis", threshold=sure))
    rule = Confirm(first, cutoff, oww_models_dir() / "hey_jarvis.tflite")
    return WakeWordDetector([dataclasses.replace(spec, confirm=rule)])


@pytest.fixture(scope="module")
def jarvis_audio() -> bytes:
    return pcm(silence(1.0), speech("hey jarvis", SLT), silence(1.5))


def test_an_unsure_first_stage_wakes_only_when_the_second_model_agrees(jarvis_audio: bytes) -> None:
    # 'sure' set out of reach, so every candidate is in the unsure band and the confirmer decides.
    agrees = _jarvis(sure=0.9999, first=0.3, cutoff=0.05)
    refuses = _jarvis(sure=0.9999, first=0.3, cutoff=0.9999)
    found = detect(agrees, jarvis_audio)
    assert [d.word for d in found] == ["hey_jarvis"]
    assert detect(refuses, jarvis_audio) == []
    refuses_word = refuses._words["micro"][0]
    assert refuses_word.unconfirmed > 0  # it was asked, and said no, again and again
    assert refuses.confirmer is not None and refuses.confirmer.activations >= 1


def test_a_sure_first_stage_needs_no_second_opinion(jarvis_audio: bytes) -> None:
    one = WakeWordDetector([resolve_word(WakeWordSettings("hey_jarvis", threshold=0.5), two_stage=False)])
    two = _jarvis(sure=0.5, first=0.3, cutoff=0.9999)
    assert [d.timestamp_ms for d in detect(two, jarvis_audio)] == [d.timestamp_ms for d in detect(one, jarvis_audio)]


def test_the_confirmer_costs_nothing_while_no_score_is_unsure() -> None:
    detector = _jarvis(sure=0.97, first=0.35, cutoff=0.5)
    noise = (np.random.default_rng(3).standard_normal(16000 * 8) * 300).astype("<i2").tobytes()
    assert detect(detector, pcm(silence(2.0)) + noise) == []
    assert detector.confirmer is not None and detector.confirmer.activations == 0


def test_runner_and_replay_agree(jarvis_audio: bytes) -> None:
    """The bench's replay of the rule (cascade.py) decides like the runner, on the same audio."""
    rule = Rule(0.3, 0.4)
    sure = 0.9999
    runner = _jarvis(sure=sure, first=rule.first_cutoff, cutoff=rule.cutoff)
    found = detect(runner, jarvis_audio)
    samples = np.frombuffer(jarvis_audio, "<i2")
    micro_spec = resolve_word(WakeWordSettings("hey_jarvis", threshold=sure))
    oww_spec = resolve_word(WakeWordSettings("oww:hey_jarvis"))
    scorers = Scorers([micro_spec, oww_spec])
    ends, probs = scorers.trace(samples)
    scorers.close()
    clip = Clip("wake", "tuning", word="hey_jarvis", voice="test")
    trace = Trace(clip.id, len(samples) / 16000, 2.5, ends, probs, {})
    item = Scored(clip, trace)
    cascade = Cascade([item], [item], micro_spec, "oww:hey_jarvis", "tuning")
    assert cascade.point(rule).recall == (1.0 if found else 0.0)
    assert cascade.point(Rule(0.3, 0.9999)).recall == 0.0


def test_packaged_words_get_their_calibrated_rule_and_settings_can_turn_it_off() -> None:
    for word in ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"):
        spec = resolve_word(WakeWordSettings(word))
        if word in CALIBRATED:
            assert spec.confirm is not None and (spec.confirm.first_cutoff, spec.confirm.cutoff) == CALIBRATED[word]
            assert spec.confirm.first_cutoff < spec.threshold
        else:
            assert spec.confirm is None
    off = WakeWordDetector.from_settings(WakeSettings(words=(WakeWordSettings("alexa"),), two_stage=False))
    on = WakeWordDetector.from_settings(WakeSettings(words=(WakeWordSettings("alexa"),)))
    assert off.confirmer is None and on.confirmer is not None and on.confirmer.words == ("alexa",)


def _manifest_with(tmp_path: Path, rule: object) -> Path:
    source = micro_models_dir()
    config = json.loads((source / "alexa.json").read_text())
    (tmp_path / config["model"]).write_bytes((source / config["model"]).read_bytes())
    config["voxhome_confirm"] = rule
    path = tmp_path / "alexa.json"
    path.write_text(json.dumps(config))
    return path


def test_a_bundles_own_rule_wins_and_a_bad_one_is_a_clear_error(tmp_path: Path) -> None:
    good = _manifest_with(tmp_path, {"first_cutoff": 0.4, "cutoff": 0.6, "model": "oww:alexa"})
    spec = resolve_word(WakeWordSettings(str(good)))
    assert spec.confirm is not None and (spec.confirm.first_cutoff, spec.confirm.cutoff) == (0.4, 0.6)
    for rule, words in (({"first_cutoff": 0.4, "cutoff": 0.6, "model": "oww:nobody"}, "not installed"),
                        ({"first_cutoff": 1.4, "cutoff": 0.6, "model": "oww:alexa"}, "between 0 and 1"),
                        ({"cutoff": 0.6, "model": "oww:alexa"}, "first_cutoff"),
                        ("0.4", "bad two-stage rule")):
        bad = _manifest_with(tmp_path, rule)
        with pytest.raises(ModelError, match=words) as err:
            resolve_word(WakeWordSettings(str(bad)))
        assert str(bad) in str(err.value)


def _scored(clip_id: str, kind: str, part: str, micro: list[float], oww: list[float], wake_end_s: float = -1.0) -> Scored:
    clip = Clip(kind, part, text=clip_id, word="w" if kind == "wake" else "")  # type: ignore[arg-type]
    ends = np.arange(1, len(micro) + 1) * 100
    trace = Trace(clip.id, len(micro) / 10, wake_end_s, {"w": ends, "oww:w": ends}, {"w": np.asarray(micro), "oww:w": np.asarray(oww)}, {})
    return Scored(clip, trace)


def test_calibration_takes_a_rule_only_when_it_hears_more_without_waking_more() -> None:
    spec = dataclasses.replace(resolve_word(WakeWordSettings("alexa")), name="w", threshold=0.9, window=1)
    pos = [_scored(f"p{n}", "wake", "tuning", [0.0] * 5 + [0.6] * 3 + [0.0] * 5, [0.0] * 5 + [0.9] * 3 + [0.0] * 5, 1.0)
           for n in range(4)]
    pos += [_scored("sure", "wake", "tuning", [0.0] * 5 + [0.95] * 3 + [0.0] * 5, [0.0] * 13, 1.0)]
    # A negative the first stage is unsure of but the confirmer rejects: a rule may not let it through.
    neg = [_scored("n", "speech", "tuning", [0.0] * 20 + [0.6] * 3 + [0.0] * 4000, [0.3] * 4023)]
    items = pos + neg
    cascade = Cascade(items, items, spec, "oww:w", "tuning")
    assert cascade.point(None).recall == pytest.approx(0.2)
    pick = calibrate(cascade, max_per_hour=0.0)
    assert pick is not None and pick.rule is not None
    assert pick.recall == 1.0 and pick.false_wakes == 0
    assert pick.rule.cutoff >= 0.3 and pick.rule.first_cutoff < 0.6
    # When the confirmer agrees with everything, nothing beats one stage without waking on the negative.
    flat = [_scored(s.clip.text, s.clip.kind, "tuning", list(s.trace.probs["w"]), [0.95] * len(s.trace.probs["w"]),
                    s.trace.wake_end_s) for s in items]
    assert calibrate(Cascade(flat, flat, spec, "oww:w", "tuning"), max_per_hour=0.0) is None
