"""Is this answer a yes? Whole-answer templates (hassil), one file per language. Pure.

The question is "Do you want me to unlock the front door?", and only a clear affirmative may open
it. So the default is "not confirmed": an answer is a yes only when the *whole* answer matches an
"Affirm" template of its language ("yes", "yes please", "sure, go ahead"); a word like "sure" or "okay"
somewhere inside ("I'm not sure", "okay, hold on", "yes but not now") is not. A question ("sure?")
is never a yes, and a veto word ("not", "but", "wait"…) overrules even a template that matched, in
case a template grows too wide. A whole-answer "Deny" template ("no", "no, leave it locked",
"cancel") cancels at once; anything else is `unclear`, which the caller asks once more.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from hassil import Intents, recognize

_LOGGER = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("answer_templates")
MAX_ANSWER_CHARS = 200
"""A longer 'answer' is a sentence about something else, never a yes."""

Answer = Literal["yes", "no", "unclear"]


def languages() -> tuple[str, ...]:
    """The languages with answer templates (file names of answer_templates/*.yaml)."""
    return tuple(sorted(p.stem for p in TEMPLATES.glob("*.yaml")))


def base_language(language: str) -> str:
    """'en-US' → 'en', 'de_CH' → 'de'; an unknown language falls back to English."""
    code = language.replace("_", "-").split("-", 1)[0].lower()
    return code if code in languages() else "en"


@dataclass(frozen=True)
class AnswerTemplates:
    language: str
    intents: Intents
    veto: re.Pattern[str]

    @classmethod
    def load(cls, language: str) -> AnswerTemplates:
        path = TEMPLATES / f"{base_language(language)}.yaml"
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        never = [str(w).lower() for w in data.pop("never_yes", [])]
        # Words are matched whole ('not' must not veto 'note'); entries with an apostrophe
        # ("n't", "n'") are fragments, matched anywhere.
        parts = [re.escape(w) if "'" in w else rf"(?<!\w){re.escape(w)}(?!\w)" for w in never]
        veto = re.compile("|".join(parts) if parts else r"(?!x)x")
        return cls(str(data.get("language", language)), Intents.from_dict(data), veto)

    def understand(self, text: str) -> Answer:
        cleaned = normalise(text)
        if not cleaned or len(cleaned) > MAX_ANSWER_CHARS:
            return "unclear"
        if "?" in cleaned or "¿" in cleaned:
            # "Sure?" or "Are you sure?" asks back; it never agrees.
            return "no" if self._match(cleaned) == "Deny" else "unclear"
        intent = self._match(cleaned)
        if intent == "Affirm":
            if self.veto.search(cleaned):
                _LOGGER.info("an answer matched a yes template but has a veto word; not a yes")
                return "unclear"
            return "yes"
        if intent == "Deny":
            return "no"
        return "unclear"

    def _match(self, cleaned: str) -> str | None:
        try:
            result = recognize(cleaned, self.intents, language=self.language)
        except Exception:  # a matcher bug on odd input must fail closed, never confirm
            _LOGGER.exception("answer matching failed")
            return None
        return result.intent.name if result is not None else None


def normalise(text: str) -> str:
    """Lower case, one kind of apostrophe, no control characters, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("`", "'")
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


@functools.cache
def templates(language: str = "en") -> AnswerTemplates:
    """Loaded once per language (parsing the templates costs a few ms)."""
    return AnswerTemplates.load(language)


def understand_answer(text: str, language: str = "en") -> Answer:
    """'yes', 'no' or 'unclear' for a spoken answer to a confirmation question."""
    return templates(base_language(language)).understand(text)


def yes_or_no(text: str, language: str = "en") -> bool | None:
    """True only for a clear whole-answer yes; False for a clear no; None when unclear."""
    answer = understand_answer(text, language)
    return True if answer == "yes" else False if answer == "no" else None
