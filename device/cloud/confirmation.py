"""Risky actions asked for by the cloud model are confirmed by the user's own voice, heard locally.

The realtime model gets 'needs_confirmation' for an unlock; it asks the user, the user answers,
and the model calls the tool again. Trusting the model to say "the user agreed" would let a
misheard or injected instruction open the door, so the device decides: it transcribes the
user's answer itself, and only a clear whole-answer yes (device/intent/answers.py) approves that
exact call (same tool, same arguments), once, for a short time. An unclear answer ("I'm not sure")
keeps the call waiting for one more answer; a second unclear answer, or a no, drops it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from device.events import ToolCall, ToolResult
from device.tools.api import ToolExecutor, ToolSpec

_LOGGER = logging.getLogger(__name__)

APPROVAL_TTL_S = 60.0

Outcome = Literal["idle", "approved", "ask_again", "gave_up", "refused"]


def _key(call: ToolCall) -> str:
    return call.name + " " + json.dumps(call.arguments, sort_keys=True)


@dataclass
class _Approval:
    key: str
    until: float


class SpokenConfirmation:
    """A ToolExecutor for the cloud that holds risky calls until the user says yes."""

    def __init__(self, tools: ToolExecutor, clock: Callable[[], float] = time.monotonic) -> None:
        self._tools = tools
        self._clock = clock
        self._waiting: ToolCall | None = None
        self._approved: _Approval | None = None
        self._asked_again = False
        self._question = ""

    @property
    def waiting(self) -> ToolCall | None:
        """The risky call the model asked for, awaiting the user's answer."""
        return self._waiting

    @property
    def question(self) -> str:
        """The question the tools asked for the waiting call ('Do you want me to unlock …?')."""
        return self._question

    def answer(self, yes: bool | None) -> Outcome:
        """The user's next utterance, as the device heard it (True only for a clear yes).

        'approved': the waiting call may run once; 'refused': a clear no dropped it; 'ask_again':
        unclear, the call still waits for one more answer; 'gave_up': unclear twice, dropped.
        """
        if self._waiting is None:
            return "idle"
        if yes is True:
            self._approved = _Approval(_key(self._waiting), self._clock() + APPROVAL_TTL_S)
            _LOGGER.info("user confirmed %s", self._waiting.name)
            self._waiting = None
            return "approved"
        if yes is None and not self._asked_again:
            self._asked_again = True
            return "ask_again"
        _LOGGER.info("no clear yes for %s; dropped", self._waiting.name)
        self._waiting = None
        return "refused" if yes is False else "gave_up"

    def specs(self) -> list[ToolSpec]:
        return self._tools.specs()

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        approval = self._approved
        approved = approval is not None and approval.key == _key(call) and self._clock() <= approval.until
        if approved:
            self._approved = None  # one spoken yes, one action
        result = await self._tools.execute(call, confirmed=approved)
        if result.status == "needs_confirmation":
            self._waiting = call
            self._asked_again = False
            self._question = result.message
        return result
