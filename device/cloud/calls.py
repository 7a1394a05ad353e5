"""The model's function calls → the home tools → the `function_call_output` it reads.

Arguments arrive as a JSON string that may be invalid or off-schema; each failure becomes an
error result for the model (so it can tell the user), never an exception in the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import jsonschema

from device.errors import VoxError
from device.events import ToolCall, ToolResult
from device.tools.api import ToolExecutor

log = logging.getLogger(__name__)


MAX_ARGUMENTS = 16 * 1024
"""Characters of arguments a home tool call may carry; real ones are well under 1 KiB."""


async def run_tool(
    tools: ToolExecutor, call_id: str, name: str, arguments: str | None, *, timeout_s: float,
) -> ToolResult:
    """Validate this one call and run it; every failure is this call's error result."""
    specs = {s.name: s for s in tools.specs()}
    if name not in specs:
        return ToolResult(call_id, name[:80], "error", {}, f"unknown tool {name[:80]!r}")
    if arguments is None or len(arguments) > MAX_ARGUMENTS:
        return ToolResult(call_id, name, "error", {}, "arguments must be a JSON object under 16 KiB")
    try:
        args = json.loads(arguments)
        if not isinstance(args, dict):
            raise ValueError("not an object")
        jsonschema.validate(args, specs[name].parameters)
    except (ValueError, RecursionError):
        return ToolResult(call_id, name, "error", {}, "arguments are not a JSON object")
    except jsonschema.ValidationError as err:
        return ToolResult(call_id, name, "error", {}, f"invalid arguments: {err.message}")
    call = ToolCall(name, args, call_id=call_id, source="cloud")
    try:
        return await asyncio.wait_for(tools.execute(call), timeout_s)
    except TimeoutError:
        return ToolResult(call_id, name, "error", {}, "timeout")
    except VoxError as err:
        return ToolResult(call_id, name, "error", {}, err.message)
    except Exception as err:  # noqa: BLE001 - a broken tool must not end the conversation
        log.exception("tool %s crashed", name)
        return ToolResult(call_id, name, "error", {}, f"tool failed: {type(err).__name__}")


def tool_output(result: ToolResult) -> str:
    """The function_call_output the model reads: ok flag, data, and why it failed."""
    out: dict[str, Any] = {"ok": result.status == "ok", **result.data}
    if result.status == "needs_confirmation":
        # Passed back so the model asks the user; the action runs only on a confirmed turn.
        out["needs_confirmation"] = True
        if result.message:
            out["message"] = result.message
    elif result.status != "ok":
        out["error"] = result.message or result.status
    return json.dumps(out, separators=(",", ":"))
