"""Local first: decide whether an utterance stays on the device or goes to the cloud.

Pure: the local understanding's verdict and confidences in, a `Route` with a reason out. The
reason (never the audio or the words) is what gets logged, so a user can see why a request left
the house. Thresholds are constructor arguments; the caller builds one from settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from device.settings import CloudSettings

log = logging.getLogger(__name__)

LocalKind = Literal["tool", "answer", "speaker", "timer", "not_local", "reject", "none"]
"""What the local understanding made of it: a tool call, a local answer (the time), a command for
the speaker itself or its timers, 'not about the home', a clear refusal ("there is no sauna"), or
nothing (no transcript)."""
Way = Literal["local", "cloud", "drop"]


@dataclass(frozen=True, slots=True)
class Route:
    way: Way
    reason: str


@dataclass(frozen=True, slots=True)
class RouteDecider:
    min_local_confidence: float = 0.6
    """A local tool call at least this sure runs locally."""
    min_asr_confidence: float = 0.3
    """Below this the transcript itself is doubtful: let the cloud hear the audio instead."""
    cloud_enabled: bool = True

    def __post_init__(self) -> None:
        for value in (self.min_local_confidence, self.min_asr_confidence):
            if not 0.0 <= value <= 1.0:
                raise ValueError("confidence thresholds must be between 0 and 1")

    @classmethod
    def from_settings(cls, cloud: CloudSettings) -> RouteDecider:
        return cls(min_local_confidence=cloud.local_min_confidence, cloud_enabled=cloud.enabled)

    def decide(self, kind: LocalKind, confidence: float, *, asr_confidence: float = 1.0) -> Route:
        route = self._decide(kind, confidence, asr_confidence)
        log.info("route %s: %s (local=%s %.2f, asr %.2f)", route.way, route.reason, kind, confidence, asr_confidence)
        return route

    def _decide(self, kind: LocalKind, confidence: float, asr_confidence: float) -> Route:
        if kind == "tool" and confidence >= self.min_local_confidence and asr_confidence >= self.min_asr_confidence:
            return Route("local", "confident local command")
        if kind in ("answer", "speaker", "timer") and confidence >= self.min_local_confidence:
            return Route("local", f"local {kind}")
        if kind == "reject" and confidence >= self.min_local_confidence:
            # A clear "the home has no such device" answer is local; guessing in the cloud is worse.
            return Route("local", "confident local refusal")
        if not self.cloud_enabled:
            if kind == "tool" and confidence >= self.min_local_confidence:
                return Route("local", "cloud disabled; doubtful transcript kept local")
            return Route("drop", "cloud disabled by the privacy switch")
        if kind == "tool":
            if confidence < self.min_local_confidence:
                return Route("cloud", f"local command confidence {confidence:.2f} below {self.min_local_confidence:.2f}")
            return Route("cloud", f"transcript confidence {asr_confidence:.2f} below {self.min_asr_confidence:.2f}")
        if kind == "not_local":
            return Route("cloud", "not a home command")
        if kind == "none":
            return Route("cloud", "no local transcript")
        return Route("cloud", f"local refusal confidence {confidence:.2f} below {self.min_local_confidence:.2f}")
