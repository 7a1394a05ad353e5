"""The two-stage wake word (microWakeWord + openWakeWord or EfficientWord-Net confirming) on real models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from device.bench.wake.cascade import Cascade, CascadePoint, Rule, calibrate, choose
from device.bench.wake.dataset import Clip
from device.bench.wake.evaluate import Scored
from device.bench.wake.ewn_traces import FLOOR, needed, similarities
from device.bench.wake.traces import Scorers, Trace
from device.errors import ModelError
from device.settings import WakeSettings, WakeWordSettings
from models.wake import WakeWordDetector, micro_models_dir, oww_models_dir, resolve_word
from models.wake_confirm import CALIBRATED, Confirm, EwnConfirmer
from models.wake_phrase import PhraseEmbedder
from models.wake_phrase_enrol import enrol
from tests.frontend.conftest import EN_US, SLT, pcm, silence, speech
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
            first, cutoff, model = CALIBRATED[word]
            assert spec.confirm is not None and (spec.confirm.first_cutoff, spec.confirm.cutoff) == (first, cutoff)
            assert spec.confirm.first_cutoff < spec.threshold
            if model.startswith("ewn:"):
                assert spec.confirm.model is None and spec.confirm.phrase == model[4:]
            else:
                assert spec.confirm.model == oww_models_dir() / f"{model[4:]}.tflite"
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



# -- EfficientWord-Net confirming (words with no useful openWakeWord twin) ---------------------------


def _nabu(sure: float, first: float, cutoff: float) -> WakeWordDetector:
    spec = resolve_word(WakeWordSettings("okay_nabu", threshold=sure), two_stage=False)
    return WakeWordDetector([dataclasses.replace(spec, confirm=Confirm(first, cutoff, None, "okay nabu"))])


@pytest.fixture(scope="module")
def nabu_audio() -> bytes:
    return pcm(silence(1.0), speech("okay nabu", EN_US), silence(1.5))


def _ewn(detector: WakeWordDetector) -> EwnConfirmer:
    assert detector.confirmer is not None
    part = detector.confirmer.part("okay_nabu")
    assert isinstance(part, EwnConfirmer)
    return part


def test_the_phrase_matcher_confirms_an_unsure_score_and_refuses_at_a_cutoff_out_of_reach(nabu_audio: bytes) -> None:
    agrees = _nabu(sure=0.9999, first=0.3, cutoff=0.05)
    refuses = _nabu(sure=0.9999, first=0.3, cutoff=0.9999)
    assert [d.word for d in detect(agrees, nabu_audio)] == ["okay_nabu"]
    assert detect(refuses, nabu_audio) == []
    assert refuses._words["micro"][0].unconfirmed > 0
    # It woke for the unsure stretch only: a few windows, not one per hop of the whole clip.
    ewn = _ewn(refuses)
    hops = len(nabu_audio) // 2 // 3200
    assert ewn.activations >= 1 and 0 < ewn.windows <= hops


def test_the_phrase_matcher_sleeps_while_no_score_is_unsure() -> None:
    detector = _nabu(sure=0.85, first=0.3, cutoff=0.5)
    noise = (np.random.default_rng(5).standard_normal(16000 * 6) * 300).astype("<i2").tobytes()
    assert detect(detector, pcm(silence(1.0)) + noise) == []
    assert _ewn(detector).activations == 0 and _ewn(detector).windows == 0


def test_phrase_matcher_runner_and_replay_agree(nabu_audio: bytes) -> None:
    """The bench's ewn trace (only the windows the runner could compute) replayed by the cascade
    decides like the runner, at a cutoff just under and just over the best score it sees."""
    sure = 0.9999
    samples = np.frombuffer(nabu_audio, "<i2")
    micro_spec = resolve_word(WakeWordSettings("okay_nabu", threshold=sure), two_stage=False)
    scorers = Scorers([micro_spec])
    ends, probs = scorers.trace(samples)
    scorers.close()
    clip = Clip("wake", "held_out", word="okay_nabu", voice="test")
    seconds = len(samples) / 16000  # a detection anywhere in the clip counts, as for the runner below
    micro = Scored(clip, Trace(clip.id, seconds, seconds, ends, probs, {}))
    embedder = PhraseEmbedder()
    enrolment = enrol("okay nabu", embedder)
    labels = tuple(sorted(set(enrolment.voices)))
    grid = needed(micro.trace, [micro_spec], ["okay_nabu"])
    sims = similarities(samples, grid, {"okay_nabu": enrolment}, {"okay_nabu": labels}, embedder)["okay_nabu"]
    embedder.close()
    assert len(grid) > 0 and sims.shape == (len(grid), len(labels))
    name = "ewn:okay nabu"
    confirm = Scored(clip, Trace(clip.id, seconds, seconds, {name: grid * 200}, {name: sims.max(axis=1)}, {}))
    cascade = Cascade([micro], [confirm], micro_spec, name, "held_out")
    first = FLOOR  # every window of the trace lies before some step over it
    assert cascade.point(Rule(first, 0.01, name)).recall == 1.0
    best = float(sims.max())  # so this is the best confirming score an unsure step sees
    woke = []
    for cutoff in (round(best - 0.02, 3), round(best + 0.005, 3)):
        found = detect(_nabu(sure=sure, first=first, cutoff=cutoff), nabu_audio)
        assert cascade.point(Rule(first, cutoff, name)).recall == (1.0 if found else 0.0), cutoff
        woke.append(bool(found))
    assert woke == [True, False]


def test_a_bundle_can_name_a_phrase_as_the_confirmer(tmp_path: Path) -> None:
    good = _manifest_with(tmp_path, {"first_cutoff": 0.4, "cutoff": 0.6, "model": "ewn:Okay  Nabu"})
    spec = resolve_word(WakeWordSettings(str(good)))
    assert spec.confirm is not None and spec.confirm.model is None and spec.confirm.phrase == "okay nabu"
    with pytest.raises(ModelError, match="no words"):
        resolve_word(WakeWordSettings(str(_manifest_with(tmp_path, {"first_cutoff": 0.4, "cutoff": 0.6, "model": "ewn: ?"}))))
    with pytest.raises(ValueError, match="exactly one"):
        Confirm(0.4, 0.6, oww_models_dir() / "alexa.tflite", "alexa")


def test_choose_takes_the_confirmer_that_hears_most_and_none_when_neither_gains() -> None:
    def at(recall: float, wakes: int, model: str) -> CascadePoint:
        return CascadePoint(Rule(0.3, 0.5, model), recall, wakes, 0, 1.0, 1.0, 0.0)

    oww, ewn = at(0.60, 1, "oww:w"), at(0.70, 1, "ewn:w")
    assert choose([oww, ewn]) is ewn
    assert choose([at(0.7, 0, "oww:w"), at(0.7, 1, "ewn:w")]).rule.model == "oww:w"  # type: ignore[union-attr]
    assert choose([at(0.7, 1, "oww:w"), at(0.7, 1, "ewn:w")]).rule.model == "oww:w"  # type: ignore[union-attr]
    assert choose([None, ewn]) is ewn and choose([None, None]) is None


def test_a_calibrated_phrase_confirmer_ships_its_references_in_the_wake_bundle(tmp_path: Path) -> None:
    from models.manifest import verify_bundle
    from models.wake_factory import ensure_wake_bundle
    from ota.health import check_wake

    rule = {"first_cutoff": 0.5, "cutoff": 0.45, "model": "ewn:okay nabu"}
    bundle = ensure_wake_bundle({"words": {}, "two_stage": {"okay_nabu": rule}}, root=tmp_path / "bundles")
    manifest = verify_bundle(bundle)  # the references are a file of the manifest, hashed like the models
    assert "okay_nabu.ewn.npy" in {f.path for f in manifest.files}
    config = json.loads((bundle / "okay_nabu.json").read_text())
    assert config["voxhome_confirm"] == {**rule, "references": "okay_nabu.ewn.npy"}
    spec = resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))
    assert spec.confirm is not None and spec.confirm.references == bundle / "okay_nabu.ewn.npy"
    np.testing.assert_allclose(np.load(spec.confirm.references), enrol("okay nabu").references, atol=1e-6)
    assert "golden clip(s) as expected" in check_wake(bundle, manifest)
    # A bundle whose references are missing or not embeddings fails at start-up, naming the file.
    (bundle / "okay_nabu.ewn.npy").unlink()
    with pytest.raises(ModelError, match="okay_nabu.ewn.npy"):
        resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))
    np.save(bundle / "okay_nabu.ewn.npy", np.zeros((3, 7), np.float32))
    with pytest.raises(ModelError, match=r"expected \[n, 2048\]"):
        WakeWordDetector([resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))])


# -- verifying every candidate (a confirmer that knows the first stage's sure near misses) -----------


def test_verify_all_lets_the_confirmer_turn_down_a_sure_first_stage(jarvis_audio: bytes) -> None:
    one = WakeWordDetector([resolve_word(WakeWordSettings("hey_jarvis", threshold=0.5), two_stage=False)])
    assert detect(one, jarvis_audio)  # the first stage alone is sure of it
    spec = resolve_word(WakeWordSettings("hey_jarvis", threshold=0.5))
    model = oww_models_dir() / "hey_jarvis.tflite"
    vetoed = WakeWordDetector([dataclasses.replace(spec, confirm=Confirm(0.3, 0.9999, model, verify_all=True))])
    assert detect(vetoed, jarvis_audio) == []
    assert vetoed._words["micro"][0].unconfirmed > 0
    agreed = WakeWordDetector([dataclasses.replace(spec, confirm=Confirm(0.3, 0.05, model, verify_all=True))])
    assert [d.word for d in detect(agreed, jarvis_audio)] == ["hey_jarvis"]


def test_a_bundle_rule_may_verify_all_and_a_bad_flag_is_a_clear_error(tmp_path: Path) -> None:
    config = json.loads((micro_models_dir() / "alexa.json").read_text())
    config["model"] = str(micro_models_dir() / config["model"])
    for flag, ok in ((True, True), (False, True), ("yes", False)):
        config["voxhome_confirm"] = {"first_cutoff": 0.3, "cutoff": 0.5, "model": "oww:alexa", "verify_all": flag}
        path = tmp_path / "alexa.json"
        path.write_text(json.dumps(config))
        if ok:
            spec = resolve_word(WakeWordSettings(str(path)))
            assert spec.confirm is not None and spec.confirm.verify_all is flag
        else:
            with pytest.raises(ModelError, match="verify_all must be true or false"):
                resolve_word(WakeWordSettings(str(path)))


def test_calibration_verifies_all_when_that_takes_false_wakes_away_at_the_same_recall() -> None:
    spec = dataclasses.replace(resolve_word(WakeWordSettings("alexa")), name="w", threshold=0.9, window=1)
    pos = [_scored(f"p{n}", "wake", "tuning", [0.0] * 5 + [0.95] * 3 + [0.0] * 5, [0.0] * 5 + [0.9] * 3 + [0.0] * 5, 1.0)
           for n in range(4)]
    # A near miss the first stage is sure of, which the confirmer knows is not the word.
    neg = [_scored("n", "near_miss", "tuning", [0.0] * 20 + [0.97] * 3 + [0.0] * 4000, [0.1] * 4023)]
    items = pos + neg
    cascade = Cascade(items, items, spec, "oww:w", "tuning")
    assert cascade.point(None).recall == 1.0 and cascade.point(None).false_wakes == 1
    pick = calibrate(cascade, max_per_hour=0.5)
    assert pick is not None and pick.rule is not None and pick.rule.verify_all
    assert pick.recall == 1.0 and pick.false_wakes == 0
    # When the confirmer can't tell them apart either, verifying all would only cost recall: no rule.
    blind = [_scored(s.clip.text, s.clip.kind, "tuning", list(s.trace.probs["w"]), [0.9] * len(s.trace.probs["w"]),
                     s.trace.wake_end_s) for s in items]
    assert calibrate(Cascade(blind, blind, spec, "oww:w", "tuning"), max_per_hour=0.5) is None
