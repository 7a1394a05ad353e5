"""From traces to numbers: per part and word, recall and false wakes per hour at a cutoff, the DET
curve, the calibrated cutoff, pymicro-wakeword's numbers beside ours, and the DET plot."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.bench.wake.dataset import WAKE_SLACK_S, Clip
from device.bench.wake.metrics import (
    Negatives,
    Point,
    calibrate,
    det_curve,
    fires,
    point_at,
    positive_peaks,
    window_means,
)
from device.bench.wake.traces import Trace
from models.wake import WakeWordSpec


@dataclass(frozen=True, slots=True)
class Scored:
    clip: Clip
    trace: Trace


@dataclass(frozen=True, slots=True)
class WordResult:
    part: str
    word: str
    positives: int
    hours: float
    manifest: Point
    curve: tuple[Point, ...]
    peer_recall: float
    peer_false_wakes: int
    by_condition: dict[str, tuple[np.ndarray, np.ndarray]]
    """condition → (peaks, peer hits) of its positives"""
    negatives: Negatives

    @property
    def peer_per_hour(self) -> float:
        return self.peer_false_wakes / self.hours if self.hours else float("inf")


def deadline_ms(item: Scored) -> float:
    return 1000 * (item.trace.wake_end_s + WAKE_SLACK_S)


def evaluate(items: Sequence[Scored], spec: WakeWordSpec, part: str) -> WordResult:
    word = spec.name
    pos = [s for s in items if s.clip.part == part and s.clip.kind == "wake" and s.clip.word == word]
    neg = [s for s in items if s.clip.part == part and s.clip.kind != "wake"]
    peaks = positive_peaks([(s.trace.end_ms[word], s.trace.probs[word], deadline_ms(s)) for s in pos], spec.window)
    peer_hits = np.asarray([bool(np.any(s.trace.peer_ms[word] <= deadline_ms(s))) for s in pos])
    seconds = sum(s.trace.seconds for s in neg)
    negatives = Negatives.join([(s.trace.end_ms[word], s.trace.probs[word]) for s in neg], seconds, spec.window)
    by_cond: dict[str, list[int]] = defaultdict(list)
    for n, s in enumerate(pos):
        by_cond[s.clip.condition].append(n)
    return WordResult(
        part=part,
        word=word,
        positives=len(pos),
        hours=seconds / 3600,
        manifest=point_at(peaks, negatives, spec.threshold, spec.window, spec.refractory_ms),
        curve=tuple(det_curve(peaks, negatives, spec.window, spec.refractory_ms)),
        peer_recall=float(np.mean(peer_hits)) if pos else 0.0,
        peer_false_wakes=sum(len(s.trace.peer_ms[word]) for s in neg),
        by_condition={c: (peaks[idx], peer_hits[idx]) for c, idx in by_cond.items()},
        negatives=negatives,
    )


def at_cutoff(result: WordResult, cutoff: float, spec: WakeWordSpec) -> Point:
    peaks = np.concatenate([p for p, _ in result.by_condition.values()]) if result.by_condition else np.zeros(0)
    return point_at(peaks, result.negatives, cutoff, spec.window, spec.refractory_ms)


def near_miss_fires(items: Sequence[Scored], spec: WakeWordSpec, part: str, cutoff: float, top: int = 5) -> list[tuple[str, int]]:
    """Which negative texts fire the word most at `cutoff` (what a verifier would have to reject)."""
    counts: Counter[str] = Counter()
    for s in items:
        if s.clip.part != part or s.clip.kind == "wake":
            continue
        word = spec.name
        means = window_means(s.trace.probs[word], spec.window)
        n = len(fires(s.trace.end_ms[word], means, cutoff, spec.window, spec.refractory_ms))
        if n:
            label = s.clip.text if s.clip.kind in ("near_miss", "noise", "music") else f"speech: {s.clip.text[:50]}"
            counts[f"{s.clip.kind}/{s.clip.condition}: {label}"] += n
    return counts.most_common(top)


def calibrated(result: WordResult, max_per_hour: float) -> Point | None:
    return calibrate(result.curve, max_per_hour)


def plot_det(results: Sequence[WordResult], marks: dict[str, tuple[Point, Point | None]], path: Path, title: str) -> Path:
    """Recall against false wakes per hour, one curve per word; manifest, calibrated and peer marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    floor = min((0.5 / r.hours for r in results if r.hours), default=0.01)  # zero false wakes drawn here
    for n, r in enumerate(results):
        color = f"C{n}"
        # Operating points are discrete: a step from each to the next, never a line across a gap.
        points = sorted((max(p.per_hour, floor), 100 * p.recall) for p in r.curve)
        ax.step([x for x, _ in points], [y for _, y in points], where="post", color=color, label=r.word)
        manifest, chosen = marks[r.word]
        ax.plot(max(manifest.per_hour, floor), 100 * manifest.recall, "o", color=color, mfc="none", ms=8)
        if chosen is not None:
            ax.plot(max(chosen.per_hour, floor), 100 * chosen.recall, "*", color=color, ms=11)
        ax.plot(max(r.peer_per_hour, floor), 100 * r.peer_recall, "x", color=color, ms=8)
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.axhline(95, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(left=min(floor, 0.1) / 1.5)
    ax.set_xlabel(f"false wakes per hour (log; 0 drawn at {floor:.2g})")
    ax.set_ylabel("recall (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], marker=m, ls="", color="k", mfc=f, ms=8) for m, f in (("o", "none"), ("*", "k"), ("x", "k"))]
    labels += ["manifest cutoff", "calibrated cutoff", "pymicro-wakeword defaults"]
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
