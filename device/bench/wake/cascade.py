"""Two stages replayed from traces: microWakeWord at a low cutoff, a second model confirming.

The runtime rule (models/wake.py `_Word`, models/wake_confirm.py): a first-stage window mean over
the packaged cutoff `sure` wakes; one over `first_cutoff` but not `sure` wakes only when the
confirming model of the same phrase (openWakeWord's, or EfficientWord-Net matching the phrase)
scored over `cutoff` in the LOOK_MS before it; an unsure step the confirmer turns down sets no
refractory, so the next one is checked again. Replayed here from the cached traces of both models
(the confirmer's trace is its score along the clip, as the runner's confirmer sees it once woken;
traces.py, ewn_traces.py), so the calibration grid costs no model run. `choose` picks per word
between one stage and each confirmer with the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.bench.wake.evaluate import Scored, deadline_ms
from device.bench.wake.metrics import CLIP_GAP_MS, fires, window_means
from models.wake import WakeWordSpec
from models.wake_confirm import LOOK_MS

FIRST_GRID = tuple(round(float(c), 2) for c in np.arange(0.2, 0.96, 0.05))
CONFIRM_GRID = tuple(round(float(c), 2) for c in (*np.arange(0.05, 0.96, 0.05), 0.97, 0.99))
MIN_GAIN = 0.02
"""A two-stage rule is kept only if it recalls this much more of the tuning positives than the
first stage alone: a smaller gain is within one or two clips, not worth a second model."""


@dataclass(frozen=True, slots=True)
class Rule:
    first_cutoff: float
    cutoff: float
    model: str = ""
    """The confirming model as the wake bundle names it: 'oww:<name>', 'ewn:<phrase>', or a
    trained head's file beside the word's manifest ('<word>.head.onnx', models/wake_head.py)."""
    verify_all: bool = False
    """Every candidate needs the confirmer's yes, those over the packaged cutoff too: the only
    way a second stage can take false wakes away (the near misses the first stage is sure of)."""


@dataclass(frozen=True, slots=True)
class CascadePoint:
    rule: Rule | None
    """None: the first stage alone at its packaged cutoff."""
    recall: float
    false_wakes: int
    near_miss_wakes: int
    hours: float
    ordinary_hours: float
    unsure_per_hour: float
    """How often per hour of negatives the confirmer is woken (its cost)."""

    @property
    def per_hour(self) -> float:
        return self.false_wakes / self.hours if self.hours else float("inf")

    @property
    def ordinary_per_hour(self) -> float:
        wakes = self.false_wakes - self.near_miss_wakes
        return wakes / self.ordinary_hours if self.ordinary_hours else float("inf")


@dataclass(frozen=True, slots=True)
class _Series:
    end_ms: np.ndarray
    means: np.ndarray
    """first-stage window means at each of its steps"""
    confirm: np.ndarray
    """the confirmer's best score over the LOOK_MS up to each first-stage step"""


def _series(micro: Scored, oww: Scored, spec: WakeWordSpec, confirm_name: str) -> _Series:
    end_ms = np.asarray(micro.trace.end_ms[spec.name])
    means = window_means(micro.trace.probs[spec.name], spec.window)
    o_end = np.asarray(oww.trace.end_ms[confirm_name])
    o_prob = np.asarray(oww.trace.probs[confirm_name])
    best = np.zeros(len(end_ms))
    if o_end.size:
        lo = np.searchsorted(o_end, end_ms - LOOK_MS, "right")
        hi = np.searchsorted(o_end, end_ms, "right")
        for k in np.flatnonzero(hi > lo):
            best[k] = float(o_prob[lo[k]:hi[k]].max())
    return _Series(end_ms, means, best)


class Cascade:
    """One word's positives and negatives of one part, ready to try any rule on."""

    def __init__(self, micro: Sequence[Scored], oww: Sequence[Scored], spec: WakeWordSpec, confirm_name: str, part: str) -> None:
        self.spec = spec
        self.confirm_name = confirm_name
        by_id = {s.clip.id: s for s in oww}
        pairs = [(m, by_id[m.clip.id]) for m in micro if m.clip.part == part and m.clip.id in by_id]
        self._pos = [(_series(m, o, spec, confirm_name), deadline_ms(m)) for m, o in pairs
                     if m.clip.kind == "wake" and m.clip.word == spec.name]
        neg = [(_series(m, o, spec, confirm_name), m.clip.kind == "near_miss", m.trace.seconds) for m, o in pairs
               if m.clip.kind != "wake"]
        self.hours = sum(s for _, _, s in neg) / 3600
        self.ordinary_hours = sum(s for _, near, s in neg if not near) / 3600
        self.positives = len(self._pos)
        # Negatives laid end to end, CLIP_GAP_MS apart (no refractory spans two clips).
        self._neg = _Series(
            np.concatenate([s.end_ms + n * CLIP_GAP_MS for n, (s, _, _) in enumerate(neg)] or [np.zeros(0, np.int64)]),
            np.concatenate([s.means for s, _, _ in neg] or [np.zeros(0)]),
            np.concatenate([s.confirm for s, _, _ in neg] or [np.zeros(0)]),
        )
        self._near = np.concatenate([np.full(len(s.end_ms), near) for s, near, _ in neg] or [np.zeros(0, bool)])

    def _ok(self, s: _Series, rule: Rule | None) -> np.ndarray:
        sure = s.means > self.spec.threshold
        if rule is None:
            return sure
        if rule.verify_all:
            return (s.means > rule.first_cutoff) & (s.confirm > rule.cutoff)
        return (s.means > min(rule.first_cutoff, self.spec.threshold)) & (sure | (s.confirm > rule.cutoff))

    def point(self, rule: Rule | None) -> CascadePoint:
        hits = [bool(np.any(self._ok(s, rule)[s.end_ms <= deadline])) for s, deadline in self._pos]
        s = self._neg
        fired = fires(s.end_ms, self._ok(s, rule).astype(np.float64), 0.5, self.spec.window, self.spec.refractory_ms)
        wakes, near = len(fired), int(self._near[fired].sum())
        unsure = 0
        if rule is not None:
            # The confirmer wakes on the first unsure step after LOOK_MS without one.
            band = s.means > rule.first_cutoff
            t = s.end_ms[band if rule.verify_all else band & (s.means <= self.spec.threshold)]
            unsure = int(t.size > 0) + int(np.sum(np.diff(t) > LOOK_MS))
        return CascadePoint(rule, float(np.mean(hits)) if hits else 0.0, wakes, near, self.hours, self.ordinary_hours,
                            unsure / self.hours if self.hours else 0.0)


def calibrate(tuning: Cascade, max_per_hour: float) -> CascadePoint | None:
    """The rule with the highest tuning recall whose false wakes stay within `max_per_hour` or
    the first stage's own rate at its packaged cutoff, whichever is higher (two stages must never
    wake more often than one), kept only if it recalls MIN_GAIN more than the first stage alone.
    When the first stage alone wakes more often than `max_per_hour`, a rule that verifies every
    candidate and stays within `max_per_hour` comes first if it loses at most MIN_GAIN of recall
    (fewer false wakes at the same recall). None when no rule does either."""
    alone = tuning.point(None)
    limit = max(max_per_hour, alone.per_hour)
    best: CascadePoint | None = None
    within: CascadePoint | None = None
    for verify_all in (False, True):
        for first in FIRST_GRID:
            if first >= tuning.spec.threshold:
                continue
            for cutoff in CONFIRM_GRID:
                p = tuning.point(Rule(first, cutoff, tuning.confirm_name, verify_all))
                if p.per_hour > limit + 1e-9:
                    continue
                # Ties: fewer false wakes, then the higher cutoffs (fewer confirmer wake-ups).
                key = (p.recall, -p.false_wakes, first, cutoff)
                if best is None or key > _key(best):
                    best = p
                if alone.per_hour > max_per_hour >= p.per_hour - 1e-9 and (within is None or key > _key(within)):
                    within = p
    if within is not None and within.recall >= alone.recall - MIN_GAIN:
        return within
    if best is None or best.recall < alone.recall + MIN_GAIN:
        return None
    return best


def _key(p: CascadePoint) -> tuple[float, int, float, float]:
    assert p.rule is not None
    return (p.recall, -p.false_wakes, p.rule.first_cutoff, p.rule.cutoff)


def choose(picks: Sequence[CascadePoint | None]) -> CascadePoint | None:
    """Per word, of each confirmer's calibrated rule (`calibrate` on its own tuning cascade: same
    limit, same gain), the one that recalls most of the tuning positives; ties: fewer false
    wakes, then the first listed (the cheaper). None when no confirmer gains: one stage."""
    best: CascadePoint | None = None
    for p in picks:
        if p is not None and (best is None or (p.recall, -p.false_wakes) > (best.recall, -best.false_wakes)):
            best = p
    return best
