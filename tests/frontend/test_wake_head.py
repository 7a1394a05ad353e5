"""Trained verifier heads (models/wake_head.py, device/bench/wake/heads.py): the exported ONNX
computes what was trained, runs as a confirmer through the openWakeWord code path, and travels
in the wake bundle; the bench's data splits are what its report claims."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.bench.wake.dataset import Clip
from device.bench.wake.heads import Embeddings, fold, near_miss_text, trained_on, windows
from device.errors import ModelError
from device.settings import WakeWordSettings
from models.onnx import OnnxScorer
from models.wake import WakeWordDetector, resolve_word
from models.wake_head import DIM, STEPS, export, score_windows, train


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pattern = rng.standard_normal((STEPS, DIM)).astype(np.float32)
    pos = (pattern + 0.8 * rng.standard_normal((200, STEPS, DIM))).astype(np.float32)
    neg = rng.standard_normal((2000, STEPS, DIM)).astype(np.float32)
    return pos, neg


def test_the_exported_head_computes_what_was_trained_and_separates_its_classes(tmp_path: Path) -> None:
    pos, neg = _data()
    head = train(pos, neg, seed=1)
    path = export(head, tmp_path / "w.head.onnx")
    test_pos, test_neg = _data(seed=5)
    test_pos = test_pos + (pos.mean(axis=0) - test_pos.mean(axis=0))  # the same pattern as trained
    both = np.concatenate([test_pos[:50], test_neg[:50]])
    np.testing.assert_allclose(score_windows(path, both), head.predict(both), atol=1e-4)
    scores = score_windows(path, both)
    assert scores[:50].min() > scores[50:].max()
    scorer = OnnxScorer(path)  # what the confirmer opens
    assert scorer.input_shape == (1, STEPS, DIM)
    assert scorer.score(both[:1]) == pytest.approx(float(scores[0]), abs=1e-5)


def test_training_needs_both_classes() -> None:
    pos, _ = _data()
    with pytest.raises(ModelError, match="positive and negative"):
        train(pos, np.zeros((0, STEPS, DIM), np.float32))


def test_a_calibrated_head_ships_in_the_wake_bundle_and_confirms_through_the_openwakeword_path(tmp_path: Path) -> None:
    from models.manifest import verify_bundle
    from models.wake_factory import ensure_wake_bundle

    pos, neg = _data()
    head = export(train(pos, neg), tmp_path / "heads" / "okay_nabu.head.onnx")
    rule = {"first_cutoff": 0.35, "cutoff": 0.5, "model": "okay_nabu.head.onnx"}
    calibration = {"words": {}, "two_stage": {"okay_nabu": rule}, "heads": {"okay_nabu": str(head)}}
    bundle = ensure_wake_bundle(calibration, root=tmp_path / "bundles")
    manifest = verify_bundle(bundle)  # the head is a file of the manifest, hashed like the models
    assert "okay_nabu.head.onnx" in {f.path for f in manifest.files}
    assert json.loads((bundle / "okay_nabu.json").read_text())["voxhome_confirm"] == rule
    spec = resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))
    assert spec.confirm is not None and spec.confirm.model == bundle / "okay_nabu.head.onnx"
    detector = WakeWordDetector([spec])
    try:
        assert detector.confirmer is not None and detector.confirmer.words == ("okay_nabu",)
        noise = (300 * np.random.default_rng(0).standard_normal(32000)).astype("<i2").tobytes()
        assert detector.process_streaming(noise, 0) == []
        # Woken as by an unsure first-stage score: the head scores the kept audio through OwwConfirmer.
        score = detector.confirmer.best("okay_nabu", 2000)
        assert 0.0 <= score <= 1.0 and detector.confirmer.activations == 1
    finally:
        detector.close()
    # Another head file is another bundle; a head the calibration names but that is gone is a clear error.
    other = export(train(pos, neg, seed=3), tmp_path / "other" / "okay_nabu.head.onnx")
    assert ensure_wake_bundle({**calibration, "heads": {"okay_nabu": str(other)}}, root=tmp_path / "bundles") != bundle
    other.unlink()
    with pytest.raises(ModelError, match="verifier head of 'okay_nabu'"):
        ensure_wake_bundle({**calibration, "heads": {"okay_nabu": str(other)}}, root=tmp_path / "bundles")
    (bundle / "okay_nabu.head.onnx").unlink()
    with pytest.raises(ModelError, match="okay_nabu.head.onnx"):
        resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))


def test_windows_start_from_silence_like_the_runner() -> None:
    silence = np.full(DIM, -1.0, np.float32)
    vectors = np.arange(3 * DIM, dtype=np.float32).reshape(3, DIM)
    win = windows(Embeddings(np.asarray([80, 160, 240]), vectors), silence)
    assert win.shape == (3, STEPS, DIM)
    np.testing.assert_array_equal(win[0, :-1], np.tile(silence, (STEPS - 1, 1)))
    np.testing.assert_array_equal(win[2, -3:], vectors)


def test_near_misses_split_by_text_and_voices_by_fold() -> None:
    from device.bench.wake.nearmiss import near_misses

    misses = near_misses("okay_nabu")
    clips = [Clip("near_miss", "tuning", f"I think {m} was the answer", word="okay_nabu", voice="v") for m in misses]
    assert [near_miss_text(c) for c in clips] == misses
    split = [trained_on(c) for c in clips]
    assert 0.25 < np.mean(split) < 0.75  # about half the texts are never trained on
    # The same text in another sentence, by another voice, is on the same side.
    again = [trained_on(Clip("near_miss", "held_out", m, word="okay_nabu", voice="w")) for m in misses]
    assert again == split
    voices = ["a", "b", "c", "d"]
    assert [fold(Clip("speech", "tuning", "x", voice=v), voices) for v in voices] == [0, 1, 0, 1]
    assert {fold(Clip("noise", "tuning", "pink", seed=s), voices) for s in range(0, 8, 2)} == {0, 1}


def test_heads_need_two_tuning_voices_for_out_of_fold_scores() -> None:
    from device.bench.wake.heads import build

    said: list[str] = []
    heads = build([], lambda c: None, {}, ["espeak-ng:en-us"], ["okay_nabu"], log=said.append)  # type: ignore[arg-type,return-value]
    assert heads.paths == {} and heads.scored == [] and "at least 2 tuning voices" in said[0]
