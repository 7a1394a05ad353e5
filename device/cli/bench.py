"""`voxhome bench NAME`: benchmarks that print our numbers beside a peer's, measured in one run."""

from __future__ import annotations

from typing import Any

from device.cli.group import register_group

BENCHES = {
    "frontend": "device.bench.frontend",
    "wake": "device.bench.wake.bench",
    "wake-verify": "device.bench.wake.verify",
    "wake-phrase": "device.bench.wake_phrase",
    "asr": "device.bench.asr",
    "intent": "device.bench.intent",
    "cloud": "device.bench.cloud",
    "aec": "device.bench.aec",
    "tts": "device.bench.tts",
    "latency": "device.bench.latency",
    "e2e": "device.bench.e2e",
    "grammar": "device.bench.grammar",
    "satellite": "device.bench.satellite",
    "hostile": "device.bench.hostile",
}


def register(sub: Any) -> None:
    register_group(sub, "bench", "run a benchmark or evaluation", BENCHES)
