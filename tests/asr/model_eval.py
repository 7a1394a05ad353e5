"""tiny.en beside base on the same spoken commands: time per command and memory, in one run.

`python -m tests.asr.model_eval [--commands 40] [--snr 10]`: the commands of `voxhome bench asr`
(a seeded sample of the demo home's grammar, its voices, clean and at 10 dB SNR), decoded by
each model in its own process (so peak RSS and load time are its own) exactly as the assistant
does: free transcript + the grammar search over the demo home's sentences, on one encoding.
Printed per model: the grammar's best sentence exactly right (clean / noisy), free WER, median
and p90 ms per command (encoder, free decoding, grammar search), load time, peak RSS. The
held-out accuracy claim is `voxhome bench e2e --part held_out` with `[asr] model` set.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("tiny.en", "base")


def worker(model: str, npz: Path, count: int) -> dict[str, Any]:
    from models.asr.factory import ensure_asr_bundle
    from models.asr.runner import WhisperOnnx
    from tests.home.conftest import demo_language

    bundle = ensure_asr_bundle(model="base" if model == "base" else "tiny.en")
    search_graph = demo_language().graph()
    started = time.perf_counter()
    runner = WhisperOnnx.load(bundle)
    load_s = time.perf_counter() - started
    search = runner.prepare(search_graph)
    rows = []
    with np.load(npz) as data:
        runner.transcribe(data["u0"], search)  # warm-up, not counted
        for i in range(count):
            audio = data[f"u{i}"]
            t0 = time.perf_counter()
            text, details = runner.transcribe(audio, search)
            total_ms = (time.perf_counter() - t0) * 1000
            best = details.grammar[0].text if details.grammar else ""
            rows.append({"text": text, "best": best, "ms": total_ms, "enc": details.encoder_ms,
                         "dec": details.decoder_ms, "grammar": details.grammar_ms})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "load_s": load_s, "peak_rss_mb": rss}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=40)
    parser.add_argument("--snr", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2, help="models alternate this many times (shared-machine load hits both)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "NPZ", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.stdout.write(json.dumps(worker(args.worker[0], Path(args.worker[1]), int(args.worker[2]))) + "\n")
        return 0
    from device.bench.asr import utterances, wer
    from device.bench.asr_commands import DEMO_HOME, demo_commands
    from models.asr.factory import normalize

    commands = demo_commands(args.commands, args.seed, DEMO_HOME)
    texts, conditions, audio = utterances(commands, args.snr)
    out = sys.stdout
    out.write(f"{len(audio)} utterances ({len(commands)} commands x clean/{args.snr:g} dB), 1 thread\n")
    out.write(f"{'model':<9}{'exact clean':>12}{'exact noisy':>12}{'WER':>7}{'median ms':>10}{'p90 ms':>8}"
              f"{'enc':>6}{'dec':>6}{'gram':>6}{'load s':>7}{'RSS MB':>8}\n")
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "u.npz"
        arrays: dict[str, Any] = {f"u{i}": a for i, a in enumerate(audio)}
        np.savez(npz, **arrays)
        for model in MODELS * args.rounds:
            proc = subprocess.run([sys.executable, "-m", "tests.asr.model_eval", "--worker", model, str(npz), str(len(audio))],
                                  capture_output=True, text=True, timeout=3600, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows = r["rows"]
            exact = [normalize(row["best"]) == normalize(t) for row, t in zip(rows, texts, strict=True)]
            acc = {c: np.mean([e for e, cc in zip(exact, conditions, strict=True) if cc == c]) for c in dict.fromkeys(conditions)}
            clean, noisy = list(acc.values())
            ms = np.array([row["ms"] for row in rows])
            med = {k: float(np.median([row[k] for row in rows])) for k in ("enc", "dec", "grammar")}
            out.write(f"{model:<9}{clean:>12.1%}{noisy:>12.1%}{wer(texts, [row['text'] for row in rows]):>7.3f}"
                      f"{np.median(ms):>10.0f}{np.percentile(ms, 90):>8.0f}{med['enc']:>6.0f}{med['dec']:>6.0f}"
                      f"{med['grammar']:>6.0f}{r['load_s']:>7.2f}{r['peak_rss_mb']:>8.0f}\n")
            out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
