"""What local understanding made of a sentence: a tool call, a local answer, a speaker command,
a refusal, or "not for me" (the cloud's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from device.events import ToolCall

Kind = Literal["tool", "answer", "speaker", "timer", "not_local", "reject"]


@dataclass(frozen=True, slots=True)
class Meaning:
    """hassil's reading of a sentence, with the slot values and the words that filled them."""

    intent: str
    text: str
    values: Mapping[str, Any]
    spoken: Mapping[str, str]
    response: str = "default"
    only: bool = False
    """A name-less template ('turn off the heating'): valid when the home has one such device."""


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    text: str
    confidence: float
    call: ToolCall | None = None
    message: str = ""
    """The spoken answer or refusal (kinds answer, reject)."""
    entities: tuple[str, ...] = ()
    meaning: Meaning | None = field(default=None, compare=False)
    action: tuple[str, Any] | None = None
    """kind 'speaker': ('volume_set' | 'volume_step' | 'mute', value); kind 'timer': (op, args)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "decision", "kind": self.kind, "text": self.text, "confidence": round(self.confidence, 2)}
        if self.meaning is not None:
            out["intent"] = self.meaning.intent
        if self.call is not None:
            out["tool"] = self.call.name
            out["arguments"] = self.call.arguments
        if self.action is not None:
            out["action"] = self.action[0]
        if self.message:
            out["message"] = self.message
        return out
