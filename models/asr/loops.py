"""Catching Whisper's repetition loops during greedy decoding.

On a short window Whisper sometimes doesn't end after the command and starts over ("Turn on the
light. Turn on the light. Turn on…") or stutters on one token ("%%, %%, %%"). A spoken command
doesn't say the same phrase twice in a row, so a loop ends decoding and only its first round is kept.
"""

from __future__ import annotations

import re


def token_loop(tokens: list[int], rounds: int = 3, longest: int = 4) -> int:
    """The period p (≤ `longest`) if the last `rounds`·p tokens are one p-token block repeated, else 0."""
    for p in range(1, longest + 1):
        tail = tokens[-rounds * p :]
        if len(tail) == rounds * p and all(tail[i] == tail[i - p] for i in range(p, len(tail))):
            return p
    return 0


def _period(raw: list[str]) -> int | None:
    """The shortest p (≥ 2 words) after which the words start over from the first.

    Either the whole block has come round again, or at least 3 of its words have and the first
    round ended like a sentence (punctuation, or a capital starting the second round): "turn on
    the light and turn on the fan" must not be cut, "Turn on the light. Turn on the" may be.
    """
    words = [re.sub(r"[^\w']", "", w).lower() for w in raw]
    for p in range(2, len(words)):
        again = len(words) - p
        if again < min(p, 3) or not all(words[i] == words[i - p] for i in range(p, len(words))):
            continue
        if again >= p or raw[p - 1][-1:] in (".", ",", "!", "?", ";") or raw[p][:1].isupper():
            return p
    return None


def repeats(text: str) -> bool:
    return _period(text.split()) is not None


def drop_repeats(text: str) -> str:
    """Keep the first round of a looped transcript (punctuation as the model wrote it)."""
    words = text.split()
    period = _period(words)
    if period is None:
        return text.strip()
    return " ".join(words[:period]).rstrip(",;")
