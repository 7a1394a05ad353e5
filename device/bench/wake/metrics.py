"""Detections, DET curves and calibration from cached probability traces (pure numpy, no models).

The detection rule is the runner's (models/wake.py `_Word.push`): the mean of the last `window`
probabilities since the clip started (or since the last detection) above the cutoff fires, then
the word is quiet for `refractory_ms` of audio. Replayed here from a trace, so any cutoff, window
or a second-stage verifier can be tried without running a model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GRID = tuple(float(c) for c in np.round(np.arange(0.5, 0.9975, 0.0025), 4))
"""Cutoffs the DET curve and the calibration try."""
CLIP_GAP_MS = 10_000_000
"""Negative clips are laid end to end this far apart, so a refractory never spans two clips."""


def window_means(probs: np.ndarray, window: int) -> np.ndarray:
    """Mean of each step's last `window` probabilities; -inf while fewer have arrived."""
    probs = np.asarray(probs, np.float64)
    out = np.full(len(probs), -np.inf)
    if len(probs) >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(probs, window).sum(axis=1) / window
    return out


def fires(end_ms: np.ndarray, means: np.ndarray, cutoff: float, window: int, refractory_ms: int) -> np.ndarray:
    """Indices of the steps that detect: over the cutoff, out of the refractory, and `window`
    steps after the previous detection (the runner clears its window when it fires)."""
    cand = np.flatnonzero(means > cutoff)
    if not cand.size:
        return cand
    times = end_ms[cand]
    out: list[int] = []
    i = 0
    while i < len(cand):
        k = int(cand[i])
        out.append(k)
        i = max(int(np.searchsorted(times, end_ms[k] + refractory_ms, "left")), int(np.searchsorted(cand, k + window, "left")))
    return np.asarray(out, np.int64)


def hit_times(end_ms: np.ndarray, probs: np.ndarray, cutoff: float, window: int, refractory_ms: int) -> np.ndarray:
    """The first stage's detections in one clip's trace (ms from the clip's start): what a
    second-stage verifier gets to accept or reject."""
    return np.asarray(end_ms)[fires(np.asarray(end_ms), window_means(probs, window), cutoff, window, refractory_ms)]


@dataclass(frozen=True, slots=True)
class Negatives:
    """Every negative clip of one word's traces, laid end to end (see CLIP_GAP_MS)."""

    end_ms: np.ndarray
    means: np.ndarray
    hours: float

    @classmethod
    def join(cls, traces: Sequence[tuple[np.ndarray, np.ndarray]], seconds: float, window: int) -> Negatives:
        """`traces`: (end_ms, probs) per clip; `seconds`: their total audio."""
        ends, means = [], []
        for n, (end_ms, probs) in enumerate(traces):
            ends.append(np.asarray(end_ms, np.int64) + n * CLIP_GAP_MS)
            means.append(window_means(probs, window))
        if not ends:
            return cls(np.zeros(0, np.int64), np.zeros(0), seconds / 3600)
        return cls(np.concatenate(ends), np.concatenate(means), seconds / 3600)

    def false_wakes(self, cutoff: float, window: int, refractory_ms: int) -> int:
        return len(fires(self.end_ms, self.means, cutoff, window, refractory_ms))


def positive_peaks(traces: Sequence[tuple[np.ndarray, np.ndarray, float]], window: int) -> np.ndarray:
    """Per positive clip: the highest window mean up to its deadline (ms). A clip is recalled at
    cutoff c iff its peak > c: its first detection is its first step over c."""
    out = np.full(len(traces), -np.inf)
    for n, (end_ms, probs, deadline_ms) in enumerate(traces):
        means = window_means(probs, window)[np.asarray(end_ms) <= deadline_ms]
        if means.size:
            out[n] = float(means.max())
    return out


@dataclass(frozen=True, slots=True)
class Point:
    cutoff: float
    recall: float
    false_wakes: int
    per_hour: float


def det_curve(peaks: np.ndarray, negatives: Negatives, window: int, refractory_ms: int,
              grid: Sequence[float] = GRID) -> list[Point]:
    """Recall and false wakes per hour at each cutoff of `grid`."""
    out = []
    for cutoff in grid:
        recall = float(np.mean(peaks > cutoff)) if peaks.size else 0.0
        count = negatives.false_wakes(cutoff, window, refractory_ms)
        out.append(Point(cutoff, recall, count, count / negatives.hours if negatives.hours > 0 else float("inf")))
    return out


def point_at(peaks: np.ndarray, negatives: Negatives, cutoff: float, window: int, refractory_ms: int) -> Point:
    return det_curve(peaks, negatives, window, refractory_ms, (cutoff,))[0]


def calibrate(curve: Sequence[Point], max_per_hour: float) -> Point | None:
    """The cutoff with the highest recall at ≤ `max_per_hour` false wakes; among equals the one
    with the fewest false wakes, then the lowest cutoff (the most recall margin on new voices).
    None when no cutoff of the grid keeps false wakes that low."""
    ok = [p for p in curve if p.per_hour <= max_per_hour]
    if not ok:
        return None
    return min(ok, key=lambda p: (-p.recall, p.false_wakes, p.cutoff))
