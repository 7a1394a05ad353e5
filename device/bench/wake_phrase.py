"""`voxhome bench wake-phrase`: wake phrases enrolled from text (models/wake_phrase.py).

Each phrase is enrolled from the TUNING voices (models/wake_phrase_enrol.py). Positives are the
phrase followed by a home command (device/bench/conditions.py `render`), by every voice of a part
in clean, pink 10 dB and babble 10 dB; a positive is recalled if a window ending between the
phrase's start and its end + WAKE_SLACK_S scores over the threshold. A tuning voice is scored
against the references of the OTHER tuning voices only, so the tuning part does not flatter
itself. Negatives are the wake bench's own negative clips (speech, near misses of its words,
noise, music: device/bench/wake/dataset.py), for each part; every phrase is run over all of them
with the runtime's refractory, so a false wake is what the speaker would do.

The threshold is chosen on the TUNING part only — one threshold for every phrase, since a user's
phrase gets no calibration: the lowest with at most --max-per-hour false wakes pooled over the
phrases. The HELD-OUT part is the claim. Window embeddings are phrase-independent and are cached
per clip, so a second run (or another phrase) costs only the matching.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.bench.conditions import condition, eval_cache_dir, render
from device.bench.voices import HELD_OUT_VOICES, TUNING_VOICES, Voice, available
from device.bench.wake.dataset import WAKE_SLACK_S, Clip, load, wake_dir
from device.events import SAMPLE_RATE
from device.settings import WakeWordSettings
from hal.audio import frames_from_pcm
from models.wake_phrase import (
    GATE_DBFS,
    HOP,
    HOP_S,
    PhraseEmbedder,
    PhraseMatcher,
    PhraseSpec,
    WakePhraseDetector,
    WindowStream,
    loud_enough,
)
from models.wake_phrase_enrol import enrol

PHRASES = ("hey computer", "okay speaker", "hello marvin")
CONDITIONS = ("clean", "pink10", "babble10")
COMMANDS = ("turn on the kitchen light", "what time is it", "close the living room blinds",
            "set a timer for ten minutes", "lock the front door", "play some music in the bedroom")
NEGATIVE_KINDS = ("speech", "near_miss", "noise", "music")
GRID = tuple(float(t) for t in np.round(np.arange(0.30, 0.90, 0.01), 2))
LEAD_S = 0.6
"""render()'s silence before the phrase."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phrases", default=",".join(PHRASES), help=f"comma-separated (default {','.join(PHRASES)})")
    parser.add_argument("--negative-minutes", type=float, default=62.0, help="held-out negative audio (default 62)")
    parser.add_argument("--tuning-negative-minutes", type=float, default=20.0, help="tuning negative audio (default 20)")
    parser.add_argument("--max-per-hour", type=float, default=1.0, help="false wakes per hour the threshold allows on tuning")
    parser.add_argument("--json", type=Path, help="also write the results here")


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray
    """[n, 2048] float16"""
    end_ms: np.ndarray
    seconds: float


class Embeddings:
    """Window embeddings of a clip's audio, exactly as the runtime's WindowStream makes them."""

    def __init__(self) -> None:
        self.embedder = PhraseEmbedder()
        self.dir = eval_cache_dir() / "wake_phrase" / "windows"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ms: list[float] = []
        self.windows = 0
        """windows offered to the gate (embedded or not)"""

    def of(self, pcm: np.ndarray, name: str) -> Embedded:
        key = hashlib.sha256(f"{name}|{HOP}|{GATE_DBFS}".encode()).hexdigest()[:20]
        path = self.dir / f"{key}.npz"
        seconds = len(pcm) / SAMPLE_RATE
        self.windows += len(pcm) // HOP
        if path.is_file():
            with np.load(path) as data:
                return Embedded(data["vectors"], data["end_ms"], seconds)
        stream = WindowStream(self.embedder)
        before = self.embedder.runs
        start = time.perf_counter()
        out = list(stream.push(pcm.astype("<i2").tobytes()))
        if self.embedder.runs > before:
            self.ms.append((time.perf_counter() - start) * 1000 / (self.embedder.runs - before))
        vectors = np.stack([v for v, _ in out]).astype(np.float16) if out else np.zeros((0, 2048), np.float16)
        end_ms = np.array([s * 1000 // SAMPLE_RATE for _, s in out], dtype=np.int64)
        np.savez(path, vectors=vectors, end_ms=end_ms)
        return Embedded(vectors, end_ms, seconds)


def scores(spec_refs: np.ndarray, emb: Embedded) -> np.ndarray:
    if len(emb.vectors) == 0:
        return np.zeros(0)
    return np.max(emb.vectors.astype(np.float32) @ spec_refs.T, axis=1)


def false_wakes(refs: np.ndarray, negatives: Sequence[Embedded], threshold: float) -> int:
    matcher = PhraseMatcher(PhraseSpec("x", refs, threshold))
    count = 0
    for emb in negatives:
        matcher.reset()
        count += sum(matcher.push(v.astype(np.float32), int(t)) is not None for v, t in zip(emb.vectors, emb.end_ms, strict=True))
    return count


def negative_clips(part: str, minutes: float) -> list[Clip]:
    indexes = sorted(wake_dir().glob("traces/*/index.json"), key=lambda p: p.stat().st_mtime)
    if not indexes:
        raise SystemExit("no wake bench index under ~/.cache/voxhome/eval/wake/traces: run `voxhome bench wake` first")
    rows = [r for r in json.loads(indexes[-1].read_text())["clips"] if r["part"] == part and r["kind"] in NEGATIVE_KINDS]
    rng = np.random.default_rng(7)
    rng.shuffle(rows)
    out, used = [], 0.0
    for r in rows:
        seconds = 60.0 if r["kind"] in ("noise", "music") else 0.0
        clip = Clip(r["kind"], r["part"], r["text"], r["wake"], r["word"], r["voice"], r["condition"], r["seed"], seconds)
        if clip.id != r["id"]:
            continue  # a clip recipe changed since the index was written
        out.append(clip)
        used += float(r["seconds"])
        if used >= minutes * 60:
            break
    return out


def positives(phrase: str, voices: Sequence[Voice]) -> list[tuple[Voice, str, np.ndarray, float, str]]:
    out = []
    for v, voice in enumerate(voices):
        for c, cond in enumerate(CONDITIONS):
            seed = 101 * v + 13 * c + len(phrase)
            utt = render(COMMANDS[(v + c) % len(COMMANDS)], voice, condition(cond), seed, wake=phrase)
            out.append((voice, cond, utt.audio, utt.wake_end, utt.path.stem))
    return out


def recall_score(emb: Embedded, refs: np.ndarray, wake_end: float) -> float:
    s = scores(refs, emb)
    inside = (emb.end_ms >= LEAD_S * 1000) & (emb.end_ms <= (wake_end + WAKE_SLACK_S) * 1000)
    return float(s[inside].max()) if inside.any() else 0.0


def cost_beside_peer(refs: np.ndarray, clips: Sequence[np.ndarray]) -> tuple[float, float]:
    """CPU seconds per audio second of the streaming runner, ours beside microWakeWord's, on the
    same audio fed in 100 ms chunks."""
    from models.wake import WakeWordDetector, resolve_word

    audio = np.concatenate(clips).astype("<i2").tobytes()
    seconds = len(audio) / 2 / SAMPLE_RATE
    out = []
    for model in (WakePhraseDetector([PhraseSpec("p", refs)]),
                  WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"), two_stage=False)])):
        start = time.process_time()
        for chunk in frames_from_pcm(audio, SAMPLE_RATE // 10):
            model.process_streaming(chunk.audio, chunk.timestamp_ms)
        out.append((time.process_time() - start) / seconds)
        model.close()
    return out[0], out[1]


def run(args: argparse.Namespace) -> int:
    phrases = [p.strip() for p in args.phrases.split(",") if p.strip()]
    emb = Embeddings()
    out = sys.stdout
    tuning = [v for v in TUNING_VOICES if available(v)]
    held = [v for v in HELD_OUT_VOICES if available(v)]
    out.write(f"voices: {len(tuning)} tuning (enrolment, threshold), {len(held)} held out: {', '.join(v.label for v in held)}\n")
    negs: dict[str, list[Embedded]] = {}
    for part, minutes in (("tuning", args.tuning_negative_minutes), ("held_out", args.negative_minutes)):
        clips = negative_clips(part, minutes)
        negs[part] = [emb.of(load(c).pcm, c.id) for c in clips]
        hours = sum(e.seconds for e in negs[part]) / 3600
        out.write(f"negatives {part}: {len(clips)} clips, {hours * 60:.1f} min\n")
        out.flush()
    table: dict[str, dict[str, object]] = {}
    pos_scores: dict[str, dict[str, list[tuple[str, str, float]]]] = {}
    refs_of = {}
    for phrase in phrases:
        enrolment = enrol(phrase, emb.embedder)
        refs_of[phrase] = enrolment.references
        per_part: dict[str, list[tuple[str, str, float]]] = {}
        for part, voices in (("tuning", tuning), ("held_out", held)):
            rows = []
            for voice, cond, pcm, wake_end, name in positives(phrase, voices):
                e = emb.of(pcm, name)
                refs = enrolment.references
                if part == "tuning":  # leave the speaker's own references out
                    refs = refs[np.array([lab != voice.label for lab in enrolment.voices])]
                rows.append((voice.label, cond, recall_score(e, refs, wake_end)))
            per_part[part] = rows
        pos_scores[phrase] = per_part
        out.write(f"scored {phrase!r}\n")
        out.flush()
    # One threshold for every phrase, from the tuning part only.
    tune_hours = sum(e.seconds for e in negs["tuning"]) / 3600 * len(phrases)
    chosen = GRID[-1]
    for t in GRID:
        fw = sum(false_wakes(refs_of[p], negs["tuning"], t) for p in phrases)
        if fw / tune_hours <= args.max_per_hour:
            chosen = t
            break
    out.write(f"\nthreshold {chosen:.2f}: the lowest with <= {args.max_per_hour:g} false wakes/h on the tuning part "
              f"(pooled over {len(phrases)} phrases)\n\n")
    held_hours = sum(e.seconds for e in negs["held_out"]) / 3600
    out.write(f"{'phrase':<16}{'part':<10}" + "".join(f"{c:>10}" for c in CONDITIONS) + f"{'all':>8}{'false/h':>9}\n")
    for phrase in phrases:
        table[phrase] = {}
        for part in ("tuning", "held_out"):
            rows = pos_scores[phrase][part]
            recalls = {c: float(np.mean([s >= chosen for _, cc, s in rows if cc == c])) for c in CONDITIONS}
            total = float(np.mean([s >= chosen for _, _, s in rows]))
            hours = held_hours if part == "held_out" else tune_hours / len(phrases)
            fw = false_wakes(refs_of[phrase], negs[part], chosen)
            table[phrase][part] = {"recall": recalls, "recall_all": total, "false_wakes": fw,
                                   "false_per_hour": fw / hours, "hours": hours, "n": len(rows)}
            out.write(f"{phrase:<16}{part:<10}" + "".join(f"{recalls[c]:>10.0%}" for c in CONDITIONS)
                      + f"{total:>8.0%}{fw / hours:>9.2f}\n")
        misses = [f"{v} {c} {s:.2f}" for v, c, s in pos_scores[phrase]["held_out"] if s < chosen]
        if misses:
            out.write(f"  held-out misses: {'; '.join(misses)}\n")
    # Cost: embedding a window (measured in this run), the gate on a quiet hop, and how many
    # windows the gate let through on the held-out negatives.
    quiet = np.zeros(HOP, np.float32)
    start = time.perf_counter()
    for _ in range(2000):
        loud_enough(quiet)
    gate_us = (time.perf_counter() - start) / 2000 * 1e6
    window = np.random.default_rng(0).standard_normal(int(1.5 * SAMPLE_RATE)).astype(np.float32) * 0.1
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        emb.embedder.embed(window)
        timings.append((time.perf_counter() - start) * 1000)
    ms = statistics.median(timings)
    held_windows = sum(int(e.seconds / HOP_S) for e in negs["held_out"])
    embedded = sum(len(e.vectors) for e in negs["held_out"])
    out.write(f"\ncost: {ms:.1f} ms per window (median of 30, 1 thread; this run's cold windows "
              f"{statistics.median(emb.ms) if emb.ms else float('nan'):.1f}), hop {HOP_S * 1000:.0f} ms → "
              f"{ms / (HOP_S * 10):.1f} % of a core while sound lasts; a gated (quiet) hop {gate_us:.0f} µs "
              f"({gate_us / (HOP_S * 1e4):.3f} % of a core); the gate passed {embedded / max(held_windows, 1):.0%} "
              f"of the held-out negatives' windows\n")
    ours, peer = cost_beside_peer(refs_of[phrases[0]], [load(c).pcm for c in negative_clips("held_out", 1.0)])
    out.write(f"whole runner on 1 min of held-out negatives (speech, noise, music), CPU s per audio s: "
              f"phrase {ours:.3f} vs microWakeWord okay_nabu (models/wake.py) {peer:.3f}\n")
    if args.json:
        args.json.write_text(json.dumps({"threshold": chosen, "phrases": table, "ms_per_window": ms,
                                         "hop_s": HOP_S, "gate_us": gate_us}, indent=2))
    return 0
