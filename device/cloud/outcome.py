"""What a cloud turn ends with: `CloudOutcome`, the one value `RealtimeClient`'s turns return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from device.events import Say, ToolResult

Status = Literal["ok", "interrupted", "empty", "failed"]


@dataclass(frozen=True, slots=True)
class CloudOutcome:
    status: Status
    prompt: str | None = None
    """Local prompt id to speak (faults, 'cloud_disabled'); None when the cloud answered."""
    code: str | None = None
    reply_text: str = ""
    user_text: str = ""
    played_ms: int = 0
    tool_results: tuple[ToolResult, ...] = ()
    followup_s: float = 0.0
    """Listen this long without the wake word (same session) after a completed reply."""
    first_audio_ms: int | None = None
    """From the start of the turn (connecting included) to the first reply sample at the sink."""
    fell_back: str | None = None
    """The WebRTC fault (a CloudError code) that sent this turn over the WebSocket instead."""

    def say(self) -> Say | None:
        return Say(prompt=self.prompt) if self.prompt else None
