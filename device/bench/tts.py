"""`voxhome bench tts`: every local voice side by side in one run.

For each engine (espeak-ng, flite, hibari, the Piper joe voice; festival on request) the same
home answers go through the device's own render path (`device.voice.render.SpeechRenderer`:
synthesis, resampling to 16 kHz, silence trim, loudness match; the answer cache off). Printed
per engine: time to first sample of a short one-sentence answer (median and p90 over ≥ 20
different ones), real-time factor over all answers, RSS growth of loading the voice and its
peak while speaking (each engine in its own subprocess, so one engine's memory never counts for
another; a CLI engine's own process is reported as its child peak), and intelligibility: every
answer transcribed back by the on-device recognizer (`models.asr.runner.WhisperOnnx`), WER per
engine. The answers are generated from templates × rooms × devices × numbers (seeded); numbers
are compared as words so "21.5" and "twenty-one point five" are the same answer.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import VoxError

ENGINES = ("espeak-ng", "flite", "hibari", "piper")
"""Measured by default; festival is slow to start and held out, so only on request."""
NEURAL_VOICES = {"hibari": "hibari-heart", "piper": "piper-joe"}
TARGET_FIRST_MS = 150.0
TARGET_RSS_MB = 100.0

ROOMS = (
    "kitchen", "living room", "bedroom", "bathroom", "hallway", "office", "garage", "porch", "dining room",
    "nursery", "basement", "attic", "guest room", "patio", "study", "laundry room", "master bedroom", "den",
)
DEVICES = ("light", "lamp", "fan", "heater", "ceiling light", "floor lamp", "speaker", "desk lamp", "strip lights")
COVERS = ("blinds", "curtains", "shades", "window", "garage door", "skylight")
LOCKS = ("front door", "back door", "side door", "patio door", "garage door")
TEMPLATES = (
    "Turned on the {room} {device}.",
    "Turned off the {room} {device}.",
    "Set the thermostat to {half} degrees.",
    "The {lock} is locked.",
    "Unlocked the {room} {lock}.",
    "The {room} temperature is {temp} degrees.",
    "Set the {room} {device} to {percent} percent.",
    "Opened the {room} {cover}.",
    "Closed the {room} {cover}.",
    "The {room} {device} is off.",
    "Started a timer for {minutes} minutes.",
    "The humidity in the {room} is {percent} percent.",
    "I turned off {count} lights in the {room}.",
    "The {room} {cover} is open. Should I close it?",
)


def home_answers(count: int, seed: int = 11) -> list[str]:
    """`count` distinct answers a speaker says, drawn from the templates with a seeded generator."""
    rng = random.Random(seed)
    answers: dict[str, None] = {}
    for i in range(count * 50):  # templates with few fillings (locks) repeat; their duplicates are dropped
        if len(answers) == count:
            break
        template = TEMPLATES[i % len(TEMPLATES)]
        answers[template.format(
            room=rng.choice(ROOMS), device=rng.choice(DEVICES), cover=rng.choice(COVERS), lock=rng.choice(LOCKS),
            half=f"{rng.randrange(32, 54) / 2:g}", temp=rng.randrange(15, 29), percent=rng.randrange(10, 100, 5),
            minutes=rng.randrange(2, 46), count=rng.randrange(2, 7),
        )] = None
    if len(answers) < count:
        raise VoxError("bench-setup", f"the templates make only {len(answers)} distinct answers, not {count}")
    return list(answers)


def short_answers(count: int, seed: int = 5) -> list[str]:
    """Different one-sentence confirmations ("Turned on the porch fan."): what first-sample time is about."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out[f"Turned {rng.choice(('on', 'off'))} the {rng.choice(ROOMS)} {rng.choice(DEVICES)}."] = None
    return list(out)


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(number: str) -> str:
    whole, _, frac = number.partition(".")
    n = int(whole)
    if n < 20:
        words = _ONES[n]
    elif n < 100:
        words = _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    else:
        return " ".join(_ONES[int(d)] for d in whole) + (" point " + " ".join(_ONES[int(d)] for d in frac) if frac else "")
    return words + (" point " + " ".join(_ONES[int(d)] for d in frac) if frac else "")


def spoken(text: str) -> str:
    """Normalized words with digits spelled out (the recognizer writes either form)."""
    from models.asr.factory import normalize

    text = re.sub(r"\d+(?:\.\d+)?", lambda m: f" {_number_words(m.group())} ", text.replace(",", ""))
    return normalize(text)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    ref, hyp = spoken(reference).split(), spoken(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1], len(ref)


# -- the worker: one engine in its own process -----------------------------------------------


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _open_engine(engine: str) -> Any:
    from device.voice.render import SpeechCache, SpeechRenderer
    from device.voice.tts import LocalTts

    no_cache = SpeechCache(max_items=0, max_bytes=0)  # every render is a real synthesis
    if engine in NEURAL_VOICES:
        from device.voice.neural import NeuralTts
        from models.tts.factory import ensure_tts_bundle, load_runner

        return SpeechRenderer(NeuralTts(load_runner(ensure_tts_bundle(NEURAL_VOICES[engine]))), cache=no_cache)
    return SpeechRenderer(LocalTts(engine), cache=no_cache)


def worker(engine: str, job_path: Path, out_dir: Path) -> dict[str, Any]:
    job = json.loads(job_path.read_text(encoding="utf-8"))
    # What the service has loaded before its voice: numpy, onnxruntime, the voice modules.
    import onnxruntime  # noqa: F401

    import device.voice.render  # noqa: F401

    base = _status_mb("VmRSS")
    start = time.perf_counter()
    renderer = _open_engine(engine)
    renderer.render("Okay.")  # as open_voice does at boot: first-run allocations aren't an answer's cost
    load_s = time.perf_counter() - start
    loaded = _status_mb("VmRSS")
    first = []
    for text in job["short"]:
        t0 = time.perf_counter()
        renderer.render(text)
        first.append((time.perf_counter() - t0) * 1000)
    out_dir.mkdir(parents=True, exist_ok=True)
    synth_s = spoken_s = 0.0
    for i, text in enumerate(job["answers"]):
        t0 = time.perf_counter()
        clips = [renderer.render(s).audio for s in renderer.sentences(text)]
        synth_s += time.perf_counter() - t0
        clip = np.concatenate(clips).astype(np.float32)
        spoken_s += len(clip) / 16000
        np.save(out_dir / f"a{i}.npy", clip)  # to disk at once: the clips would otherwise count as RSS
    return {
        "engine": engine, "voice": renderer.name, "load_s": load_s, "first_ms": first,
        "rtf": synth_s / max(spoken_s, 1e-9), "audio_s": spoken_s,
        "rss_load_mb": loaded - base, "rss_peak_mb": _status_mb("VmHWM") - base, "rss_end_mb": _status_mb("VmRSS") - base,
        "child_peak_mb": _cli_peak_mb(engine, job["answers"][-1]) if engine not in NEURAL_VOICES else 0.0,
    }


def _cli_peak_mb(engine: str, text: str) -> float:
    """Peak RSS of one run of a CLI engine, through /usr/bin/time: a child forked by Python would
    report Python's own high-water mark (the kernel records it at exec)."""
    from device.voice.tts import DEFAULT_VOICES, _command

    with tempfile.TemporaryDirectory() as tmp:
        cmd, stdin = _command(engine, DEFAULT_VOICES[engine], 1.0, text, Path(tmp) / "out.wav")
        report = Path(tmp) / "time.txt"
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd], input=stdin,
                              capture_output=True, timeout=60, check=False)
        if done.returncode != 0 or not report.exists():
            return float("nan")
        return int(report.read_text().split()[-1]) / 1024


def run_worker(engine: str, job: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "device.bench.tts", engine, str(job), str(out)],
        capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0:
        raise VoxError("bench-failed", f"{engine}: {proc.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the report ---------------------------------------------------------------------------------


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated (default {','.join(ENGINES)}; also festival)")
    parser.add_argument("--answers", type=int, default=120, help="home answers for intelligibility and RTF (≥ 100)")
    parser.add_argument("--short", type=int, default=24, help="short answers timed for first sample (≥ 20)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated answers")
    parser.add_argument("--asr-bundle", type=Path, help="speech bundle (default: the cached/built one)")
    parser.add_argument("--json", type=Path, help="also write every number (and every transcript) here")


def _available(engine: str) -> bool:
    from device.voice.tts import engine_available

    return engine in NEURAL_VOICES or engine_available(engine)


def run(args: argparse.Namespace) -> int:
    if args.answers < 100 or args.short < 20:
        raise VoxError("bench-setup", "intelligibility needs ≥ 100 answers and first-sample timing ≥ 20 short ones")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    answers, short = home_answers(args.answers, args.seed), short_answers(args.short)
    say(f"{len(answers)} home answers, {len(short)} short ones; each engine in its own process")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="voxhome-bench-tts-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"answers": answers, "short": short}), encoding="utf-8")
        for engine in engines:
            if not _available(engine):
                say(f"{engine:10} not installed")
                continue
            try:
                results[engine] = run_worker(engine, job, Path(tmp) / engine)
            except VoxError as err:
                say(f"{engine:10} fails: {err.message}")
                continue
            r = results[engine]
            say(f"{engine:10} synthesized {r['audio_s']:.0f} s of speech (loaded in {r['load_s']:.2f} s)")
        _transcribe(results, answers, Path(tmp), args.asr_bundle)
    _report(results)
    if args.json:
        args.json.write_text(json.dumps({"answers": answers, "short": short, "engines": results}, indent=1), encoding="utf-8")
    return 0


def _transcribe(results: dict[str, dict[str, Any]], answers: list[str], tmp: Path, bundle: Path | None) -> None:
    from models.asr.factory import ensure_asr_bundle
    from models.asr.runner import WhisperOnnx

    recognizer = WhisperOnnx.load(bundle or ensure_asr_bundle())
    try:
        for engine, r in results.items():
            heard = [recognizer.transcribe(np.load(tmp / engine / f"a{i}.npy"))[0] for i in range(len(answers))]
            errors = [word_errors(a, h) for a, h in zip(answers, heard, strict=True)]
            r["heard"] = heard
            r["wer"] = sum(e for e, _ in errors) / max(1, sum(n for _, n in errors))
            r["exact"] = sum(e == 0 for e, _ in errors) / len(errors)
            say(f"{engine:10} transcribed back: WER {r['wer']:.3f}")
    finally:
        recognizer.close()


def _report(results: dict[str, dict[str, Any]]) -> None:
    say("")
    say(f"{'engine':10} {'first ms':>8} {'p90':>5} {'RTF':>6} {'WER':>6} {'exact':>6} "
        f"{'RSS load':>8} {'peak':>6} {'child':>6}  voice")
    for engine, r in results.items():
        first = sorted(r["first_ms"])
        p90 = first[min(len(first) - 1, int(0.9 * len(first)))]
        say(f"{engine:10} {statistics.median(first):8.0f} {p90:5.0f} {r['rtf']:6.3f} {r.get('wer', float('nan')):6.3f} "
            f"{r.get('exact', float('nan')):6.0%} {r['rss_load_mb']:+7.0f}M {r['rss_peak_mb']:+5.0f}M "
            f"{r['child_peak_mb']:5.0f}M  {r['voice']}")
    say("")
    say(f"targets: first sample ≤ {TARGET_FIRST_MS:.0f} ms (one-sentence answer, render path, this machine), "
        f"WER no worse than espeak-ng, RSS growth ≤ {TARGET_RSS_MB:.0f} MB")
    say("first ms: text → trimmed, levelled 16 kHz audio of a one-sentence answer; RSS: this process after "
        "loading + warm-up (load) and its high-water mark while speaking (peak), over the same process before "
        "the voice; child: one run of a CLI engine's own process (it exits after each sentence). A Pi 4 core is ~3-4x slower than one here.")
    base = results.get("espeak-ng")
    if base and "wer" in base:
        for engine, r in results.items():
            if engine != "espeak-ng" and "wer" in r:
                say(f"{engine:10} WER {r['wer']:.3f} vs espeak-ng {base['wer']:.3f}; first sample "
                    f"{statistics.median(r['first_ms']) / statistics.median(base['first_ms']):.2f}x espeak-ng's")


if __name__ == "__main__":
    engine_arg, job_arg, out_arg = sys.argv[1:4]
    sys.stdout.write(json.dumps(worker(engine_arg, Path(job_arg), Path(out_arg))) + "\n")
