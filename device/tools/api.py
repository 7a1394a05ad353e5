"""The tool interface shared by the local command path and the cloud model.

The same `ToolSpec`s are offered to the realtime API as function definitions and used by the
local understanding; both paths execute through one `ToolExecutor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from device.events import ToolCall, ToolResult


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments (type 'object')."""

    def to_realtime(self) -> dict[str, Any]:
        """The function-calling form the realtime API takes in session.tools."""
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


class ToolExecutor(Protocol):
    def specs(self) -> list[ToolSpec]: ...

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        """Validate, authorise and run one call. Never raises for bad input: returns status 'error'.

        A risky action that is not `confirmed` returns status 'needs_confirmation'.
        """
        ...
