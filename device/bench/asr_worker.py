"""One system of `voxhome bench asr`, run in its own process so that its peak RSS is its own.

`python -m device.bench.asr_worker SYSTEM UTTERANCES.npz JOB.json` loads one recognizer (timing
the load), transcribes every utterance (one warm-up first, not counted) and prints one JSON line:
texts, per-utterance latencies, load time, peak RSS; the voxhome system also runs each trailing-
silence setting. Utterances are read one at a time, so the audio stays out of the RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _transcribe_all(transcribe: Callable[[np.ndarray], str], data: Any, count: int) -> tuple[list[str], list[float]]:
    transcribe(data["u0"])  # warm-up: first-run allocations and kernel choices aren't per-utterance cost
    texts, seconds = [], []
    for i in range(count):
        audio = data[f"u{i}"]
        start = time.perf_counter()
        texts.append(transcribe(audio))
        seconds.append(time.perf_counter() - start)
    return texts, seconds


def faster_whisper(job: dict[str, Any], data: Any, count: int) -> dict[str, Any]:
    start = time.perf_counter()
    from faster_whisper import WhisperModel

    model = WhisperModel(job["ct2_dir"], device="cpu", compute_type="int8", cpu_threads=job["threads"], num_workers=1)
    load_s = time.perf_counter() - start

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments)

    texts, seconds = _transcribe_all(transcribe, data, count)
    return {"load_s": load_s, "texts": texts, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _text_of(runner: Any) -> Callable[[np.ndarray], str]:
    return lambda audio: str(runner.transcribe(audio)[0])


def voxhome(job: dict[str, Any], data: Any, count: int) -> dict[str, Any]:
    start = time.perf_counter()
    from models.asr.runner import WhisperOnnx

    runner = WhisperOnnx.load(job["bundle"], threads=job["threads"])
    load_s = time.perf_counter() - start
    result: dict[str, Any] = {"load_s": load_s}
    texts, seconds = _transcribe_all(_text_of(runner), data, count)
    result |= {"texts": texts, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}
    pads: dict[str, Any] = {}
    for pad in job.get("pads", []):
        variant = WhisperOnnx.load(job["bundle"], threads=job["threads"], pad_seconds=pad)
        pad_texts, pad_seconds = _transcribe_all(_text_of(variant), data, count)
        pads[str(pad)] = {"texts": pad_texts, "seconds": pad_seconds}
        del variant
    result["pads"] = pads
    return result


SYSTEMS = {"faster-whisper": faster_whisper, "voxhome": voxhome}


def main(argv: list[str]) -> int:
    system, utterances, job_path = argv
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    with np.load(utterances) as data:
        count = len(data.files)
        result = SYSTEMS[system](job, data, count)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
