"""`voxhome bench wake`: the near-miss rule, DET counting and calibration on traces whose answers
are known, and one tiny real run: render → traces → the runner's own detections → calibration →
a wake bundle the runner and the OTA health check read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.bench.wake.metrics import (
    GRID,
    Negatives,
    Point,
    calibrate,
    det_curve,
    fires,
    hit_times,
    positive_peaks,
    window_means,
)
from device.bench.wake.nearmiss import PHRASES, WakePhrase, near_misses, normalized, spell


def spell_of(miss: str, phrase: WakePhrase) -> str:
    """A miss with the phrase's own spellings put back to syllables ('okay' → 'ohkay')."""
    words = dict(zip(phrase.text.split(), (spell((w,)) for w in phrase.words), strict=True))
    return " ".join(words.get(w, w) for w in miss.split())


@pytest.mark.parametrize("word", sorted(PHRASES))
def test_every_word_gets_a_class_of_near_misses_none_of_them_the_wake_phrase(word: str) -> None:
    misses = near_misses(word)
    assert len(misses) >= 12
    assert len({normalized(m) for m in misses}) == len(misses)
    wake = {normalized(p.text) for p in PHRASES.values()}
    assert not any(w in normalized(m) for m in misses for w in wake)
    phrase = PHRASES[word]
    # the classes the rule promises: a shortened phrase, a lengthened one, sound swaps in every word
    sounds = len(normalized(spell(phrase.words)))  # 'uhleksuh': as spelled for TTS, like the misses
    assert any(len(normalized(spell_of(m, phrase))) < sounds - 1 for m in misses)
    assert any(len(normalized(spell_of(m, phrase))) > sounds + 1 for m in misses)
    for position in range(len(phrase.text.split())):
        assert any(
            len(m.split()) == len(phrase.text.split()) and m.split()[position] != phrase.text.split()[position]
            for m in misses
        )


def test_near_misses_of_an_unknown_word_are_an_error() -> None:
    with pytest.raises(ValueError, match="no syllables"):
        near_misses("hey_computer")


def _trace(seconds: float, bursts: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """30 ms steps; each burst (start s, length s, probability) on a floor of 0.01."""
    end_ms = np.arange(30, int(seconds * 1000) + 1, 30, dtype=np.int64)
    probs = np.full(len(end_ms), 0.01)
    for start, length, p in bursts:
        probs[(end_ms >= start * 1000) & (end_ms < (start + length) * 1000)] = p
    return end_ms, probs


def test_window_means_and_refractory_follow_the_runner_rule() -> None:
    end_ms, probs = _trace(20, [(2.0, 0.3, 0.9), (3.0, 0.3, 0.9), (6.0, 0.3, 0.9), (10.0, 0.09, 0.99)])
    means = window_means(probs, 5)
    assert np.isneginf(means[:4]).all() and means[4] == pytest.approx(0.01)
    got = fires(end_ms, means, 0.85, 5, 2000)
    # 2.0 s fires; 3.0 s is inside its refractory; 6.0 s fires; 10.0 s: 3 steps of 0.99 never make a window mean of 0.85
    # (steps end every 30 ms: the 5th step of a burst at 2.0 s ends at 2.13 s, at 6.0 s at 6.12 s)
    assert [round(float(end_ms[k]) / 1000, 2) for k in got] == [2.13, 6.12]


def test_det_counts_on_synthetic_traces() -> None:
    negatives = Negatives.join(
        [_trace(1800, [(100, 0.5, 0.7), (500, 0.5, 0.8), (900, 0.5, 0.9), (901, 0.5, 0.95)]),  # 901: refractory of 900
         _trace(1800, [(0.0, 0.5, 0.92)])],
        3600.0, 5,
    )
    assert negatives.hours == 1.0
    pos = [_trace(3, [(1.0, 0.3, p)]) for p in (0.6, 0.8, 0.95)] + [_trace(3, [(2.8, 0.2, 0.99)])]
    peaks = positive_peaks([(e, p, 2500.0) for e, p in pos], 5)  # the last one comes after its deadline
    curve = {p.cutoff: p for p in det_curve(peaks, negatives, 5, 2000, (0.5, 0.75, 0.85, 0.93, 0.97))}
    assert [(c, curve[c].recall, curve[c].false_wakes) for c in curve] == [
        (0.5, 0.75, 4), (0.75, 0.5, 3), (0.85, 0.25, 2), (0.93, 0.25, 1), (0.97, 0.0, 0)]
    assert curve[0.85].per_hour == 2.0


def test_calibration_takes_the_highest_recall_within_the_false_wake_budget() -> None:
    curve = [Point(0.5, 1.0, 9, 3.0), Point(0.6, 0.98, 2, 0.67), Point(0.7, 0.96, 1, 0.33),
             Point(0.8, 0.96, 0, 0.0), Point(0.9, 0.96, 0, 0.0), Point(0.95, 0.5, 0, 0.0)]
    assert calibrate(curve, 0.5) == Point(0.8, 0.96, 0, 0.0)  # equal recall: fewer false wakes, then the lowest cutoff
    assert calibrate(curve, 1.0) == Point(0.6, 0.98, 2, 0.67)
    assert calibrate(curve[:1], 0.5) is None


def test_calibration_on_synthetic_traces_picks_the_cutoff_between_the_false_wakes_and_the_positives() -> None:
    negatives = Negatives.join([_trace(7200, [(100, 0.5, 0.9), (200, 0.5, 0.91)])], 7200.0, 5)  # 2 false wakes in 2 h
    peaks = positive_peaks([(*_trace(3, [(1.0, 0.3, p)]), 3000.0) for p in np.linspace(0.92, 0.99, 20)], 5)
    chosen = calibrate(det_curve(peaks, negatives, 5, 2000), 0.5)
    assert chosen is not None and chosen.recall == 1.0 and chosen.false_wakes == 0
    assert chosen.cutoff == min(c for c in GRID if c >= 0.91)  # the lowest cutoff above both false wakes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A few real clips (tuning voice, clean and pink 10 dB), real models, traces in a temp dir."""
    from device.bench.wake.dataset import Clip, load
    from device.bench.wake.traces import TraceStore, builtin_specs

    clips = [Clip("wake", "tuning", c, w.replace("_", " ") if w != "alexa" else "alexa", w, "espeak-ng:en-us", cond, s)
             for s, (w, c, cond) in enumerate([("okay_nabu", "turn on the kitchen light", "clean"),
                                                ("alexa", "what time is it", "pink10"),
                                                ("hey_mycroft", "lock the front door", "clean")])]
    clips.append(Clip("speech", "tuning", "the licence lets you copy and change the program", "", "", "flite:slt", "clean", 9))
    clips.append(Clip("music", "tuning", "mix", "", "", "", "clean", 4, 10.0))
    specs = builtin_specs()
    store = TraceStore(specs, root=tmp_path_factory.mktemp("traces"))
    traces = [store.get(c, lambda c=c: load(c)) for c in clips]  # type: ignore[misc]
    store.close()
    again = TraceStore(specs, root=store.root.parent)
    cached = [again.get(c, lambda: pytest.fail("a cached trace must not render or score again")) for c in clips]
    return {"clips": clips, "specs": specs, "traces": traces, "cached": cached, "store": store}


def test_detections_replayed_from_traces_are_the_runners(tiny: dict[str, object]) -> None:
    from device.bench.wake.dataset import load
    from hal.audio import frames_from_pcm
    from models.wake import WakeWordDetector

    specs = tiny["specs"]
    detector = WakeWordDetector(specs)  # type: ignore[arg-type]
    heard_words = set()
    for clip, trace, cached in zip(tiny["clips"], tiny["traces"], tiny["cached"], strict=True):  # type: ignore[call-overload]
        detector.reset()
        audio = load(clip)
        theirs = sorted((d.word, d.timestamp_ms) for ch in frames_from_pcm(audio.pcm.tobytes())
                        for d in detector.process_streaming(ch.audio, ch.timestamp_ms))
        ours = sorted((s.name, int(t)) for s in specs  # type: ignore[attr-defined]
                      for t in hit_times(trace.end_ms[s.name], trace.probs[s.name], s.threshold, s.window, s.refractory_ms))
        assert ours == theirs
        assert all(np.array_equal(cached.probs[w], trace.probs[w]) for w in trace.probs)
        heard_words |= {w for w, _ in theirs}
        if clip.kind == "wake":
            assert 0.5 < trace.wake_end_s < trace.seconds - 1.0
    detector.close()
    assert {"okay_nabu", "alexa"} <= heard_words  # the run is not vacuous: the models did fire


def test_a_tiny_run_calibrates_and_the_bundle_carries_the_cutoffs(tiny: dict[str, object], tmp_path: Path) -> None:
    from device.bench.wake.evaluate import Scored, at_cutoff, calibrated, evaluate, plot_det
    from device.settings import WakeWordSettings
    from models.manifest import read_manifest, verify_bundle
    from models.wake import resolve_word
    from models.wake_factory import ensure_wake_bundle
    from ota.health import check_wake

    specs = tiny["specs"]
    items = [Scored(c, t) for c, t in zip(tiny["clips"], tiny["traces"], strict=True)]  # type: ignore[call-overload]
    results = [evaluate(items, s, "tuning") for s in specs]  # type: ignore[attr-defined]
    nabu = results[0]
    assert nabu.word == "okay_nabu" and nabu.positives == 1 and nabu.manifest.recall == 1.0
    assert nabu.hours == pytest.approx(sum(t.seconds for c, t in zip(tiny["clips"], tiny["traces"], strict=True)  # type: ignore[call-overload]
                                           if c.kind != "wake") / 3600)
    picks = {r.word: calibrated(r, 0.5) for r in results}
    assert picks["okay_nabu"] is not None and picks["okay_nabu"].recall == 1.0
    png = plot_det(results, {r.word: (r.manifest, at_cutoff(r, picks[r.word].cutoff, s) if picks[r.word] else None)  # type: ignore[union-attr]
                             for r, s in zip(results, specs, strict=True)}, tmp_path / "det.png", "tiny")  # type: ignore[call-overload]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from device.bench.wake.bench import calibration_record
    from device.bench.wake.dataset import SetSize

    by_key = {("tuning", r.word): r for r in results}
    record = calibration_record(by_key, picks, list(specs), SetSize(), "k", 0.5, 0.5)  # type: ignore[call-overload]
    assert record["words"]["okay_nabu"]["cutoff"] == picks["okay_nabu"].cutoff
    deaf = calibration_record(by_key, picks, list(specs), SetSize(), "k", 0.5, 1.01)  # type: ignore[call-overload]
    assert deaf["words"] == {} and sorted(deaf["kept_packaged_cutoff"]) == sorted(r.word for r in results)
    calibration = {"words": {w: {"cutoff": e["cutoff"]} for w, e in record["words"].items()}}
    bundle = ensure_wake_bundle(calibration, root=tmp_path / "bundles")
    manifest = verify_bundle(bundle)
    assert manifest.kind == "wake" and read_manifest(bundle).metadata["cutoffs"]["okay_nabu"] == picks["okay_nabu"].cutoff
    spec = resolve_word(WakeWordSettings(model=str(bundle / "okay_nabu.json")))
    assert spec.threshold == picks["okay_nabu"].cutoff  # what the runner will use, from the bundle alone
    assert json.loads((bundle / "calibration.json").read_text()) == calibration
    assert {g.expected for g in manifest.golden} >= {"", "okay_nabu", "alexa"}
    assert "golden clip(s) as expected" in check_wake(bundle, manifest)
    assert ensure_wake_bundle(calibration, root=tmp_path / "bundles") == bundle  # cached
