"""Text for the voices: sentences (the streaming unit) and a bound on what one call may say."""

from __future__ import annotations

import re

from device.errors import AudioError

MAX_TEXT = 600
"""Longest text one answer may speak; a longer one is a bug upstream, not something to read out."""

# A sentence ends at . ! ? (or …) followed by space and something that starts a sentence; a period
# after a single capital ("J. Smith") or a common title does not end one.
_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+(?=[\"“(A-Z0-9])")
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "st", "no", "vs", "approx"})


def clean(text: str) -> str:
    """One line of text with single spaces; empty or over-long text is an AudioError."""
    text = " ".join(text.split())
    if not text:
        raise AudioError("audio-tts", "nothing to say")
    if len(text) > MAX_TEXT:
        raise AudioError("audio-tts", f"text longer than {MAX_TEXT} characters")
    return text


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` in order, each stripped; the unit that is synthesized and played."""
    text = clean(text)
    out: list[str] = []
    start = 0
    for match in _END.finditer(text):
        before = text[start:match.start()]
        word = before.rsplit(" ", 1)[-1].rstrip(".").lower()
        if before.endswith(".") and (word in _TITLES or (len(word) == 1 and word.isalpha())):
            continue
        out.append(before.strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]
