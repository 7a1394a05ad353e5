"""Spoken answers from the language's response templates (home-assistant-intents + ours).

HA writes its answers as Jinja templates over `slots`, `state` and `query`; they are rendered in
a sandbox with just those names. A template that fails to render (it expects something of Home
Assistant's that a speaker doesn't have) gives None, and the caller keeps the tool's own message:
an answer that is plain beats none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

_LOGGER = logging.getLogger(__name__)


class Responses:
    def __init__(self, responses: Mapping[str, Any]) -> None:
        self._intents: Mapping[str, Any] = responses.get("intents", {}) or {}
        self._errors: Mapping[str, Any] = responses.get("errors", {}) or {}
        self._env = SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)

    def has(self, intent: str, key: str) -> bool:
        return isinstance(self._intents.get(intent, {}).get(key), str)

    def intent(self, intent: str, key: str, slots: Mapping[str, Any], **names: Any) -> str | None:
        by_key = self._intents.get(intent) or {}
        template = by_key.get(key) if isinstance(by_key.get(key), str) else by_key.get("default")
        return self._render(template, {"slots": dict(slots), **names}, f"{intent}/{key}")

    def error(self, key: str, **names: Any) -> str | None:
        return self._render(self._errors.get(key), names, f"errors/{key}")

    def _render(self, template: Any, names: dict[str, Any], what: str) -> str | None:
        if not isinstance(template, str):
            return None
        try:
            text = self._env.from_string(template).render(state_attr=lambda *_: None, **names)
        except (TemplateError, TypeError, ValueError, AttributeError, KeyError) as err:
            _LOGGER.debug("response %s didn't render: %s", what, err)
            return None
        text = " ".join(text.split())
        if text and text[-1] not in ".!?…":
            text += "."  # a sentence, as the tools' own answers are (the voice paces on it)
        return text or None
