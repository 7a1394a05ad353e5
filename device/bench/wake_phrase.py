"""`voxhome bench wake-phrase`: wake phrases enrolled from text (models/wake_phrase.py).

Each phrase is enrolled from the TUNING voices (models/wake_phrase_enrol.py). Positives are the
phrase followed by a home command (device/bench/conditions.py `render`), by every voice of a part
in clean, pink 10 dB and babble 10 dB; a positive is recalled if a window ending between the
phrase's start and its end + WAKE_SLACK_S scores over the threshold. A tuning voice is scored
against the references of the OTHER tuning voices only, so the tuning part does not flatter
itself. Negatives are the wake bench's own negative clips (speech, near misses of its words,
noise, music: device/bench/wake/dataset.py), for each part; every phrase is run over all of them
with the runtime's refractory, so a false wake is what the speaker would do. The phrase's own near
misses (models/wake_phrase_nearmiss.py, generated from its text) are a class of their own: each
said alone, clean, by every voice of a part; one counts if any of its windows wakes the phrase.

Everything is scored twice in the same run: by the threshold alone ("before") and with negative
enrolment ("after": also nearer the phrase's references than its near misses' by a margin). The
margin is chosen on the TUNING part only, one value for every phrase: the largest that costs at
most --max-recall-loss of pooled tuning recall. A tuning voice's own near-miss references are
left out as its phrase references are. "Unseen" near misses are the held-out voices on every
second near-miss text, scored against the references of the other texts only: how well negative
enrolment carries to near misses it never heard.

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
from models.wake_phrase_enrol import Enrolment, enrol
from models.wake_phrase_nearmiss import near_misses

PHRASES = ("hey computer", "okay speaker", "hello marvin")
CONDITIONS = ("clean", "pink10", "babble10")
COMMANDS = ("turn on the kitchen light", "what time is it", "close the living room blinds",
            "set a timer for ten minutes", "lock the front door", "play some music in the bedroom")
NEGATIVE_KINDS = ("speech", "near_miss", "noise", "music")
GRID = tuple(float(t) for t in np.round(np.arange(0.30, 0.90, 0.01), 2))
MARGINS = tuple(float(m) for m in np.round(np.arange(-0.10, 0.201, 0.01), 2))
LEAD_S = 0.6
"""render()'s silence before the phrase."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phrases", default=",".join(PHRASES), help=f"comma-separated (default {','.join(PHRASES)})")
    parser.add_argument("--negative-minutes", type=float, default=62.0, help="held-out negative audio (default 62)")
    parser.add_argument("--tuning-negative-minutes", type=float, default=20.0, help="tuning negative audio (default 20)")
    parser.add_argument("--max-per-hour", type=float, default=1.0, help="false wakes per hour the threshold allows on tuning")
    parser.add_argument("--max-recall-loss", type=float, default=0.02,
                        help="pooled tuning recall the near-miss margin may cost (default 0.02)")
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


def nearest(refs: np.ndarray, emb: Embedded) -> np.ndarray:
    """Each window's cosine similarity to its nearest reference (-inf with no references)."""
    if len(emb.vectors) == 0 or len(refs) == 0:
        return np.full(len(emb.vectors), -np.inf)
    return np.asarray(np.max(emb.vectors.astype(np.float32) @ refs.T, axis=1))


@dataclass(frozen=True)
class Scored:
    """One clip's windows against one phrase: nearest phrase and nearest near-miss reference."""

    voice: str
    label: str
    """the condition of a positive, the text of a near miss"""
    pos: np.ndarray
    neg: np.ndarray

    def wakes(self, threshold: float, margin: float | None) -> bool:
        """The runtime rule (PhraseSpec.accepts) on any window; margin None: threshold alone."""
        ok = self.pos >= threshold
        if margin is not None:
            ok &= self.pos - self.neg >= margin
        return bool(ok.any())


def references(enrolment: Enrolment, leave_out: str = "", texts: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The phrase's and its near misses' references without one voice's (and only of `texts`)."""
    pos = np.array([v != leave_out for v in enrolment.voices], dtype=bool)
    neg = np.array([v != leave_out and (texts is None or t in texts)
                    for v, t in zip(enrolment.near_miss_voices, enrolment.near_miss_texts, strict=True)], dtype=bool)
    return enrolment.references[pos], enrolment.near_misses[neg] if len(neg) else enrolment.near_misses


def scored(emb: Embedded, refs: tuple[np.ndarray, np.ndarray], voice: str, label: str,
           until_s: float | None = None) -> Scored:
    keep = emb.end_ms >= LEAD_S * 1000
    if until_s is not None:
        keep &= emb.end_ms <= (until_s + WAKE_SLACK_S) * 1000
    return Scored(voice, label, nearest(refs[0], emb)[keep], nearest(refs[1], emb)[keep])


def false_wakes(refs: np.ndarray, negatives: Sequence[Embedded], threshold: float,
                near_misses: np.ndarray | None = None, margin: float = 0.0) -> int:
    matcher = PhraseMatcher(PhraseSpec("x", refs, threshold, near_misses=near_misses, margin=margin))
    count = 0
    for emb in negatives:
        matcher.reset()
        count += sum(matcher.push(v.astype(np.float32), int(t)) is not None for v, t in zip(emb.vectors, emb.end_ms, strict=True))
    return count


def near_miss_clips(phrase: str, voices: Sequence[Voice]) -> list[tuple[Voice, str, np.ndarray, str]]:
    """Every near miss of the phrase said alone, clean, by each voice."""
    out = []
    for n, text in enumerate(near_misses(phrase)):
        for v, voice in enumerate(voices):
            utt = render(text, voice, condition("clean"), 31 * n + v)
            out.append((voice, text, utt.audio, utt.path.stem))
    return out


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


def cost_beside_peer(refs: np.ndarray, misses: np.ndarray, clips: Sequence[np.ndarray]) -> tuple[float, float]:
    """CPU seconds per audio second of the streaming runner, ours beside microWakeWord's, on the
    same audio fed in 100 ms chunks."""
    from models.wake import WakeWordDetector, resolve_word

    audio = np.concatenate(clips).astype("<i2").tobytes()
    seconds = len(audio) / 2 / SAMPLE_RATE
    out = []
    for model in (WakePhraseDetector([PhraseSpec("p", refs, near_misses=misses)]),
                  WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"), two_stage=False)])):
        start = time.process_time()
        for chunk in frames_from_pcm(audio, SAMPLE_RATE // 10):
            model.process_streaming(chunk.audio, chunk.timestamp_ms)
        out.append((time.process_time() - start) / seconds)
        model.close()
    return out[0], out[1]


def choose_margin(scored_pos: Sequence[Scored], threshold: float, max_loss: float) -> float:
    """The largest margin whose pooled tuning recall is within max_loss of the threshold's alone
    (recall only falls as the margin grows)."""
    base = float(np.mean([s.wakes(threshold, None) for s in scored_pos]))
    ok = [m for m in MARGINS if float(np.mean([s.wakes(threshold, m) for s in scored_pos])) >= base - max_loss - 1e-9]
    return max(ok) if ok else MARGINS[0]


def run(args: argparse.Namespace) -> int:
    phrases = [p.strip() for p in args.phrases.split(",") if p.strip()]
    emb = Embeddings()
    out = sys.stdout
    tuning = [v for v in TUNING_VOICES if available(v)]
    held = [v for v in HELD_OUT_VOICES if available(v)]
    out.write(f"voices: {len(tuning)} tuning (enrolment, threshold, margin), {len(held)} held out: "
              f"{', '.join(v.label for v in held)}\n")
    negs: dict[str, list[Embedded]] = {}
    for part, minutes in (("tuning", args.tuning_negative_minutes), ("held_out", args.negative_minutes)):
        clips = negative_clips(part, minutes)
        negs[part] = [emb.of(load(c).pcm, c.id) for c in clips]
        hours = sum(e.seconds for e in negs[part]) / 3600
        out.write(f"negatives {part}: {len(clips)} clips, {hours * 60:.1f} min\n")
        out.flush()
    enrolled: dict[str, Enrolment] = {}
    pos: dict[tuple[str, str], list[Scored]] = {}
    miss: dict[tuple[str, str], list[Scored]] = {}
    unseen: dict[str, tuple[list[Scored], list[Scored]]] = {}
    for phrase in phrases:
        start = time.perf_counter()
        enrolment = enrolled[phrase] = enrol(phrase, emb.embedder)
        texts = list(dict.fromkeys(enrolment.near_miss_texts))
        out.write(f"enrolled {phrase!r} in {time.perf_counter() - start:.1f} s (a cache read if it was enrolled before): "
                  f"{len(enrolment.references)} references, {len(enrolment.near_misses)} of {len(texts)} near misses: "
                  f"{', '.join(texts)}\n")
        for part, voices in (("tuning", tuning), ("held_out", held)):
            # A tuning voice is scored without its own references, phrase and near misses alike.
            own = (lambda label: label) if part == "tuning" else (lambda label: "")
            pos[phrase, part] = [scored(emb.of(pcm, name), references(enrolment, own(voice.label)), voice.label, cond, wake_end)
                                 for voice, cond, pcm, wake_end, name in positives(phrase, voices)]
            said = [(voice, text, emb.of(pcm, name)) for voice, text, pcm, name in near_miss_clips(phrase, voices)]
            miss[phrase, part] = [scored(e, references(enrolment, own(voice.label)), voice.label, text) for voice, text, e in said]
            if part == "held_out":
                heard, fresh = texts[0::2], texts[1::2]
                refs = references(enrolment, "", heard)
                unseen[phrase] = ([s for s in miss[phrase, part] if s.label in fresh],
                                  [scored(e, refs, voice.label, text) for voice, text, e in said if text in fresh])
        out.write(f"scored {phrase!r}\n")
        out.flush()
    # One threshold for every phrase, from the tuning part only (by the threshold alone, as before).
    tune_hours = sum(e.seconds for e in negs["tuning"]) / 3600 * len(phrases)
    chosen = GRID[-1]
    for t in GRID:
        fw = sum(false_wakes(enrolled[p].references, negs["tuning"], t) for p in phrases)
        if fw / tune_hours <= args.max_per_hour:
            chosen = t
            break
    out.write(f"\nthreshold {chosen:.2f}: the lowest with <= {args.max_per_hour:g} false wakes/h on the tuning part "
              f"(pooled over {len(phrases)} phrases)\n")
    tune_pos = [s for p in phrases for s in pos[p, "tuning"]]
    tune_miss = [s for p in phrases for s in miss[p, "tuning"]]
    margin = choose_margin(tune_pos, chosen, args.max_recall_loss)
    out.write(f"margin {margin:+.2f}: the largest costing <= {args.max_recall_loss:.0%} of pooled tuning recall; tuning "
              "recall / near misses that wake, by margin:\n  ")
    curve: list[float | None] = [None, *MARGINS[::2]]
    out.write("; ".join(f"{'off' if m is None else f'{m:+.2f}'} {np.mean([s.wakes(chosen, m) for s in tune_pos]):.0%} "
                        f"{sum(s.wakes(chosen, m) for s in tune_miss)}/{len(tune_miss)}" for m in curve))
    out.write("\n\n")
    held_hours = sum(e.seconds for e in negs["held_out"]) / 3600
    out.write(f"{'phrase':<16}{'part':<10}{'rule':<10}" + "".join(f"{c:>10}" for c in CONDITIONS)
              + f"{'all':>7}{'false/h':>9}{'near misses':>13}{'unseen':>9}\n")
    table: dict[str, dict[str, object]] = {}
    for phrase in phrases:
        table[phrase] = {}
        for part in ("tuning", "held_out"):
            hours = held_hours if part == "held_out" else tune_hours / len(phrases)
            for rule, m in (("before", None), ("after", margin)):
                rows = pos[phrase, part]
                recalls = {c: float(np.mean([s.wakes(chosen, m) for s in rows if s.label == c])) for c in CONDITIONS}
                total = float(np.mean([s.wakes(chosen, m) for s in rows]))
                e = enrolled[phrase]
                fw = false_wakes(e.references, negs[part], chosen, e.near_misses if m is not None else None, m or 0.0)
                woke = sum(s.wakes(chosen, m) for s in miss[phrase, part])
                tried = len(miss[phrase, part])
                cell = ""
                if part == "held_out":
                    fresh_said = unseen[phrase][0 if m is None else 1]
                    cell = f"{sum(s.wakes(chosen, m) for s in fresh_said)}/{len(fresh_said)}"
                table[phrase][f"{part}_{rule}"] = {"recall": recalls, "recall_all": total, "false_wakes": fw,
                                                   "false_per_hour": fw / hours, "hours": hours, "n": len(rows),
                                                   "near_misses_woke": woke, "near_misses": tried, "unseen": cell}
                out.write(f"{phrase:<16}{part:<10}{rule:<10}" + "".join(f"{recalls[c]:>10.0%}" for c in CONDITIONS)
                          + f"{total:>7.0%}{fw / hours:>9.2f}{f'{woke}/{tried}':>13}{cell:>9}\n")
        for label, m in (("before", None), ("after", margin)):
            misses = [f"{s.voice} {s.label} {s.pos.max() if len(s.pos) else 0:.2f}"
                      for s in pos[phrase, "held_out"] if not s.wakes(chosen, m)]
            woke_by = [f"{s.voice} {s.label!r}" for s in miss[phrase, "held_out"] if s.wakes(chosen, m)]
            out.write(f"  {label}: held-out misses: {'; '.join(misses) or 'none'}\n")
            out.write(f"  {label}: held-out near misses that woke it: {'; '.join(woke_by) or 'none'}\n")
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
    first = enrolled[phrases[0]]
    ours, peer = cost_beside_peer(first.references, first.near_misses, [load(c).pcm for c in negative_clips("held_out", 1.0)])
    out.write(f"whole runner on 1 min of held-out negatives (speech, noise, music), CPU s per audio s: "
              f"phrase {ours:.3f} vs microWakeWord okay_nabu (models/wake.py) {peer:.3f}\n")
    if args.json:
        args.json.write_text(json.dumps({"threshold": chosen, "margin": margin, "phrases": table, "ms_per_window": ms,
                                         "hop_s": HOP_S, "gate_us": gate_us}, indent=2))
    return 0
