"""Telemetry: per-stage latencies and counts aggregated from events, published as status + metrics.

`Telemetry` is pure aggregation (events in, a frozen `Snapshot` out; wall time only through the
`now_s` argument). `render_status`/`render_prometheus` are pure too. `StatusReporter` decides when to
publish (interval or change) through an injected `publish(topic, payload, retain)`. Only names,
numbers and versions leave here: never audio, transcript text or secrets.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from device.events import (
    CloudReply,
    Detection,
    Error,
    Routed,
    Spoke,
    ToolResult,
    Transcript,
    VoiceStopped,
)
from ota.atomic import FileSystem, write_atomic

STAGES = (
    "wake_to_end_of_speech",
    "end_of_speech_to_transcript",
    "transcript_to_action",
    "cloud_turn_to_first_reply_audio",
)


@dataclass(frozen=True)
class StageStats:
    count: int = 0
    last_ms: float = 0.0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> StageStats:
        return StageStats(self.count + 1, ms, self.total_ms + ms, max(self.max_ms, ms))

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else 0.0


@dataclass(frozen=True)
class Snapshot:
    counts: Mapping[str, int]
    stages: Mapping[str, StageStats]
    models: Mapping[str, str]
    cpu_s: float = 0.0
    rss_bytes: int = 0
    muted: bool = False

    def change_key(self) -> tuple[object, ...]:
        """What counts as 'changed' for publishing: counts, versions, mute; not the CPU clock."""
        return (tuple(sorted(self.counts.items())), tuple(sorted(self.models.items())), self.muted)


@dataclass
class Telemetry:
    """Folds events into counts and stage latencies. Call observe(event, now_s) per event."""

    models: dict[str, str] = field(default_factory=dict)
    muted: bool = False
    _counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("wakes", "local", "cloud", "dropped", "failed"), 0)
    )
    _stages: dict[str, StageStats] = field(
        default_factory=lambda: {s: StageStats() for s in STAGES}
    )
    _wake_ms: int | None = None
    _eos_at: float | None = None
    _transcript_at: float | None = None

    def observe(self, event: object, now_s: float) -> None:
        match event:
            case Detection(timestamp_ms=ts):
                self._counts["wakes"] += 1
                self._wake_ms = ts
            case VoiceStopped(timestamp_ms=ts):
                # Audio time for the part the audio decides; wall time for the rest.
                if self._wake_ms is not None:
                    self._stage("wake_to_end_of_speech", ts - self._wake_ms)
                    self._wake_ms = None
                self._eos_at = now_s
            case Transcript():
                if self._eos_at is not None:
                    self._stage("end_of_speech_to_transcript", (now_s - self._eos_at) * 1000)
                    self._eos_at = None
                self._transcript_at = now_s
            case Routed(way=way):
                key = way if way in ("local", "cloud") else "dropped"
                self._counts[key] += 1
                if key != "local":
                    # transcript_to_action times local actions; the cloud has its own stage.
                    self._transcript_at = None
            case CloudReply(first_audio_ms=first):
                # The cloud's own clock: from handing it the utterance to its first sample played.
                if first is not None:
                    self._stage("cloud_turn_to_first_reply_audio", first)
            case ToolResult() | Spoke():
                if self._transcript_at is not None:
                    self._stage("transcript_to_action", (now_s - self._transcript_at) * 1000)
                    self._transcript_at = None
            case Error():
                self._counts["failed"] += 1
            case _:
                pass

    def _stage(self, name: str, ms: float) -> None:
        self._stages[name] = self._stages[name].add(max(0.0, ms))

    def snapshot(self, cpu_s: float = 0.0, rss_bytes: int = 0) -> Snapshot:
        return Snapshot(
            dict(self._counts), dict(self._stages), dict(self.models), cpu_s, rss_bytes, self.muted
        )


def process_usage() -> tuple[float, int]:
    """(CPU seconds used, current RSS bytes) of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        rss = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = usage.ru_maxrss * 1024
    return usage.ru_utime + usage.ru_stime, rss


def render_status(snap: Snapshot, device_id: str) -> str:
    return json.dumps(
        {
            "device": device_id,
            "counts": dict(snap.counts),
            "latency_ms": {
                name: {
                    "last": round(s.last_ms, 1),
                    "mean": round(s.mean_ms, 1),
                    "max": round(s.max_ms, 1),
                    "count": s.count,
                }
                for name, s in snap.stages.items()
            },
            "models": dict(snap.models),
            "muted": snap.muted,
            "cpu_s": round(snap.cpu_s, 2),
            "rss_bytes": snap.rss_bytes,
        },
        sort_keys=True,
    )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(snap: Snapshot, device_id: str) -> str:
    dev = f'device="{_label(device_id)}"'
    lines = [
        "# HELP voxhome_events_total Utterances and wakes by outcome.",
        "# TYPE voxhome_events_total counter",
    ]
    lines += [
        f'voxhome_events_total{{{dev},kind="{k}"}} {v}' for k, v in sorted(snap.counts.items())
    ]
    lines += [
        "# HELP voxhome_stage_latency_seconds Per-stage latency (sum and count).",
        "# TYPE voxhome_stage_latency_seconds summary",
    ]
    for name, s in sorted(snap.stages.items()):
        lines.append(
            f'voxhome_stage_latency_seconds_sum{{{dev},stage="{name}"}} {s.total_ms / 1000:.6f}'
        )
        lines.append(f'voxhome_stage_latency_seconds_count{{{dev},stage="{name}"}} {s.count}')
    lines += [
        "# HELP voxhome_model_info Installed model versions.",
        "# TYPE voxhome_model_info gauge",
    ]
    lines += [
        f'voxhome_model_info{{{dev},kind="{_label(k)}",version="{_label(v)}"}} 1'
        for k, v in sorted(snap.models.items())
    ]
    lines += [
        "# TYPE voxhome_muted gauge",
        f"voxhome_muted{{{dev}}} {int(snap.muted)}",
        "# TYPE voxhome_cpu_seconds_total counter",
        f"voxhome_cpu_seconds_total{{{dev}}} {snap.cpu_s:.3f}",
        "# TYPE voxhome_resident_memory_bytes gauge",
        f"voxhome_resident_memory_bytes{{{dev}}} {snap.rss_bytes}",
    ]
    return "\n".join(lines) + "\n"


def write_prometheus(path: Path, text: str) -> None:
    """Atomically, so node_exporter's textfile collector never reads half a file."""
    write_atomic(FileSystem(), path, text.encode())


@dataclass
class StatusReporter:
    """Publishes the retained status at an interval and whenever counts or versions change."""

    device_id: str
    interval_s: float
    publish: Callable[[str, str, bool], None]
    prometheus_file: Path | None = None
    _last_at: float | None = None
    _last_key: tuple[object, ...] | None = None

    @property
    def topic(self) -> str:
        return f"voxhome/{self.device_id}/status"

    def due(self, snap: Snapshot, now_s: float) -> bool:
        return (
            self._last_at is None
            or now_s - self._last_at >= self.interval_s
            or snap.change_key() != self._last_key
        )

    def maybe_publish(self, snap: Snapshot, now_s: float) -> bool:
        if not self.due(snap, now_s):
            return False
        self.send(snap, now_s)
        return True

    def send(self, snap: Snapshot, now_s: float) -> None:
        """Publish now, whether due or not."""
        self.publish(self.topic, render_status(snap, self.device_id), True)
        if self.prometheus_file is not None:
            write_prometheus(self.prometheus_file, render_prometheus(snap, self.device_id))
        self._last_at, self._last_key = now_s, snap.change_key()


class TelemetryOutput:
    """The service's output handler: `handle(event)` folds each event in and publishes when due.

    Wall time only through the injected `clock` (monotonic seconds); `tick()` is for a timer so
    the retained status keeps its interval while nothing happens.
    """

    def __init__(
        self,
        reporter: StatusReporter,
        *,
        models: Mapping[str, str] | None = None,
        muted: bool = False,
        clock: Callable[[], float],
        usage: Callable[[], tuple[float, int]] = process_usage,
    ) -> None:
        self.telemetry = Telemetry(models=dict(models or {}), muted=muted)
        self._reporter = reporter
        self._clock = clock
        self._usage = usage

    def handle(self, event: object) -> None:
        self.telemetry.observe(event, self._clock())
        self.tick()

    def set_muted(self, muted: bool) -> None:
        """The microphone was muted or unmuted: published at once (a change)."""
        self.telemetry.muted = muted
        self.tick()

    def tick(self) -> bool:
        """Publish if due. CPU and memory are read only then, not for every event."""
        now = self._clock()
        if not self._reporter.due(self.telemetry.snapshot(), now):
            return False
        self._reporter.send(self.telemetry.snapshot(*self._usage()), now)
        return True
