"""`voxhome bench asr`: our int8 ONNX Whisper beside faster-whisper int8 on the same weights.

The same utterances (home commands synthesized with several voices, clean and at 10 dB SNR)
go through faster-whisper (`WhisperModel` on the packaged CTranslate2 directory,
compute_type="int8", beam 1, the same threads) and through `models.asr.runner.WhisperOnnx`, each
system in its own subprocess so that peak RSS and load time are its own. Printed: WER, median
and p95 latency per utterance, load time, peak RSS; the cost of trailing-silence padding
(0 s … a full 30 s window). The commands are a seeded sample of the sentences the demo home's
grammar holds (`device.bench.asr_commands`). Ratios compare systems measured in the same run, so
other load on the machine affects both. Constrained decoding over the home's grammar has its own
benchmark, `voxhome bench grammar`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from device.bench.asr_commands import DEMO_HOME, demo_commands
from device.bench.speech import VOICES, available, mix_at_snr, synthesize
from device.errors import VoxError
from models.asr.factory import ensure_asr_bundle, normalize, packaged_model_dir

DEFAULT_VOICES = (0, 4, 2, 5, 1, 7)
"""espeak-ng en-us, flite slt, espeak-ng en-us+f3, flite kal, espeak-ng en-gb, flite awb."""


def say(text: str) -> None:
    """The benchmark's report goes to stdout, line by line as it is measured."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", type=int, default=60, help="distinct commands (default 60, at least 40)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads for both systems (default 1)")
    parser.add_argument("--snr", type=float, default=10.0, help="noisy copy's signal-to-noise ratio in dB (default 10)")
    parser.add_argument("--pads", default="0,4,8,30", help="extra trailing-silence settings to measure (seconds)")
    parser.add_argument("--bundle", type=Path, help="speech bundle (default: build or reuse the cached one)")
    parser.add_argument("--home", type=Path, default=DEMO_HOME,
                        help="discovery file whose home's sentences are the test commands (default: the demo home)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the test-command sample from the home's grammar")
    parser.add_argument("--json", type=Path, help="also write all numbers to this file")


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference words) after normalization."""
    ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1], len(ref)


def wer(references: list[str], hypotheses: list[str]) -> float:
    errors = [word_errors(r, h) for r, h in zip(references, hypotheses, strict=True)]
    return sum(e for e, _ in errors) / max(1, sum(n for _, n in errors))


def utterances(commands: tuple[str, ...], snr: float) -> tuple[list[str], list[str], list[np.ndarray]]:
    """Each command once clean and once noisy, voices taking turns: (texts, conditions, audio)."""
    voices = [VOICES[i] for i in DEFAULT_VOICES if available(VOICES[i])]
    if not voices:
        raise VoxError("bench-setup", "no speech engine available (scripts/setup.sh installs espeak-ng and flite)")
    texts, conditions, audio = [], [], []
    for i, command in enumerate(commands):
        clean = synthesize(command, voices[i % len(voices)])
        for condition, clip in (("clean", clean), (f"{snr:g}dB", mix_at_snr(clean, snr, seed=i))):
            texts.append(command)
            conditions.append(condition)
            audio.append(clip.astype(np.float32))
    return texts, conditions, audio


def run_worker(system: str, npz: Path, job: dict[str, Any], tmp: Path) -> dict[str, Any]:
    job_path = tmp / f"{system}.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "device.bench.asr_worker", system, str(npz), str(job_path)],
        capture_output=True, text=True, timeout=3600,
    )
    if proc.returncode != 0:
        raise VoxError("bench-failed", f"{system} worker failed: {proc.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def summarize(texts: list[str], conditions: list[str], hyps: list[str], seconds: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"wer": wer(texts, hyps)}
    for cond in dict.fromkeys(conditions):
        pick = [i for i, c in enumerate(conditions) if c == cond]
        out[f"wer_{cond}"] = wer([texts[i] for i in pick], [hyps[i] for i in pick])
    ms = np.array(seconds) * 1000
    out |= {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}
    return out


def run(args: argparse.Namespace) -> int:
    if args.commands < 40:
        raise VoxError("bench-setup", "--commands must be at least 40")
    commands = demo_commands(args.commands, args.seed, args.home)
    if len(commands) < 40:
        raise VoxError("bench-setup", f"{args.home}: its home's grammar gave only {len(commands)} distinct commands, not 40")
    pads = [float(p) for p in args.pads.split(",") if p.strip()]
    bundle = args.bundle or ensure_asr_bundle()
    texts, conditions, audio = utterances(commands, args.snr)
    say(f"{len(audio)} utterances ({len(commands)} commands x clean/{args.snr:g} dB), threads={args.threads}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        npz = tmp / "utterances.npz"
        arrays: dict[str, Any] = {f"u{i}": a for i, a in enumerate(audio)}
        np.savez(npz, **arrays)
        base = {"threads": args.threads, "ct2_dir": str(packaged_model_dir()), "bundle": str(bundle)}
        fw = run_worker("faster-whisper", npz, base, tmp)
        ours = run_worker("voxhome", npz, base | {"pads": pads}, tmp)
    report = {
        "faster-whisper": summarize(texts, conditions, fw["texts"], fw["seconds"]) | {
            "load_s": fw["load_s"], "peak_rss_mb": fw["peak_rss_mb"]},
        "voxhome": summarize(texts, conditions, ours["texts"], ours["seconds"]) | {
            "load_s": ours["load_s"], "peak_rss_mb": ours["peak_rss_mb"]},
        "pads": {p: summarize(texts, conditions, r["texts"], r["seconds"]) for p, r in ours["pads"].items()},
    }
    print_report(report, args.snr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


def print_report(r: dict[str, Any], snr: float) -> None:
    noisy = f"{snr:g}dB"
    say(f"{'system':<22}{'WER':>7}{'clean':>7}{noisy:>7}{'median ms':>11}{'p95 ms':>9}{'load s':>8}{'RSS MB':>8}")
    for name in ("faster-whisper", "voxhome"):
        s = r[name]
        say(f"{name:<22}{s['wer']:>7.3f}{s['wer_clean']:>7.3f}{s['wer_' + noisy]:>7.3f}"
              f"{s['median_ms']:>11.1f}{s['p95_ms']:>9.1f}{s['load_s']:>8.2f}{s['peak_rss_mb']:>8.1f}")
    for pad, s in r["pads"].items():
        label = f"  voxhome pad {pad} s"
        say(f"{label:<22}{s['wer']:>7.3f}{s['wer_clean']:>7.3f}{s['wer_' + noisy]:>7.3f}{s['median_ms']:>11.1f}{s['p95_ms']:>9.1f}")
    fw, ours = r["faster-whisper"], r["voxhome"]
    ratio = ours["median_ms"] / fw["median_ms"]
    checks = [
        (f"median latency ratio {ratio:.2f} <= 0.70", ratio <= 0.7),
        (f"WER {ours['wer']:.3f} <= faster-whisper {fw['wer']:.3f} + 0.01", ours["wer"] <= fw["wer"] + 0.01),
        (f"peak RSS {ours['peak_rss_mb']:.1f} MB <= 150", ours["peak_rss_mb"] <= 150),
        (f"model load {ours['load_s']:.2f} s <= 1", ours["load_s"] <= 1.0),
    ]
    for text, ok in checks:
        say(f"{'PASS' if ok else 'FAIL'}  {text}")
