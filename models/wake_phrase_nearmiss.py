"""Near misses of any wake phrase, generated from its text: what the phrase must NOT wake on.

Nothing is listed per phrase. Each word is respelled by a small set of letter confusions
(voicing and place neighbours: c→g, p→b, t→d, m→n, l→r, v→f …; close vowels; one letter
dropped), every respelling is phonemized by espeak-ng (`-x`, one call for all of them), and a
respelling is kept only when its phonemes differ from the word's by exactly one phoneme (one
swapped, dropped or added; stress ignored): so "computer" gives "commuter" and "compuder", and
homophones ("hay" for "hey") or respellings espeak reads as something else entirely are
discarded. Multi-word phrases also lose their first or last word ("computer", "okay") when what
is left is long enough to be said alone. The output is text, so every TTS voice can say it:
enrolment speaks it with the tuning voices (models/wake_phrase_enrol.py), the bench with the
held-out ones (device/bench/wake_phrase.py).

Unlike device/bench/wake/nearmiss.py, which needs a word's syllables written by hand, this works
from spelling alone; the rule, not a model, decides the class.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

from device.errors import ModelError

_LOGGER = logging.getLogger(__name__)

LETTERS: dict[str, tuple[str, ...]] = {
    "b": ("p", "d", "v"),
    "p": ("b", "t"),
    "d": ("t", "b"),
    "t": ("d", "k"),
    "k": ("g", "t"),
    "c": ("g", "t"),
    "g": ("k", "d"),
    "m": ("n", "b"),
    "n": ("m", "d"),
    "l": ("r", "w"),
    "r": ("l", "w"),
    "v": ("f", "b"),
    "f": ("v", "th"),
    "s": ("z", "sh"),
    "z": ("s",),
    "j": ("ch", "y"),
    "w": ("r", "v"),
    "h": ("p", "s"),
    "a": ("e", "o"),
    "e": ("i", "a"),
    "i": ("e", "a"),
    "o": ("u", "a"),
    "u": ("o", "i"),
}
"""Letter → letters that sound one step away (voicing, place, a close vowel). Spelling is only
the proposal: espeak-ng's phonemes decide what is kept."""
MAX_PER_WORD = 5
"""Respellings kept per word (spread over the word); with the dropped words a two-word phrase
gets ~12 near misses, enough to cover each part of it without making enrolment slow."""
MIN_ALONE_PHONEMES = 3
"""A phrase part said alone ("computer", "okay") is a near miss only if it is at least this long:
"hey" alone is too short to be worth enrolling against."""
STRESS = str.maketrans("", "", "',%=")


def phonemes(words: Sequence[str]) -> list[tuple[str, ...]]:
    """espeak-ng's phonemes of each word (stress marks removed), in one call."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelError("wake-phrase-tts", "espeak-ng is needed to find a wake phrase's near misses")
    if not words:
        return []
    # One clause per line: espeak prints one line of phonemes per clause.
    text = "".join(f"{w}.\n" for w in words)
    proc = subprocess.run([exe, "-q", "-x", "--sep=_", "-v", "en-us", "--stdin"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(lines) != len(words):
        raise ModelError("wake-phrase-tts", f"espeak-ng phonemized {len(words)} words into {len(lines)} lines "
                                            f"(exit {proc.returncode}): {proc.stderr.strip()[:200]}")
    return [tuple(p for p in line.translate(STRESS).replace(" ", "_").split("_") if p) for line in lines]


def distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance over phonemes."""
    row = list(range(len(b) + 1))
    for i, pa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, pb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (pa != pb))
    return row[-1]


def respellings(word: str) -> list[str]:
    """Every one-letter confusion of `word` (swap for a neighbour, or drop), in position order."""
    out: list[str] = []
    for i, letter in enumerate(word):
        for other in (*LETTERS.get(letter, ()), ""):
            candidate = word[:i] + other + word[i + 1 :]
            if candidate and candidate != word and candidate not in out:
                out.append(candidate)
    return out


def _spread(items: list[str], n: int) -> list[str]:
    """n items evenly over a position-ordered list, so the swaps cover the whole word."""
    if len(items) <= n:
        return items
    return [items[round(k * (len(items) - 1) / (n - 1))] for k in range(n)] if n > 1 else items[:1]


def near_misses(phrase: str, per_word: int = MAX_PER_WORD) -> list[str]:
    """The phrase's near misses (deterministic order), each one phoneme away in one word or the
    phrase without its first or last word; never the phrase itself or a homophone of it."""
    words = phrase.split()
    plain = ["".join(c for c in w if c.isalpha()) for w in words]
    candidates = {n: respellings(w) for n, w in enumerate(plain) if w}
    flat = [c for cs in candidates.values() for c in cs]
    said = phonemes([w for w in plain if w] + flat)
    own = dict(zip([n for n, w in enumerate(plain) if w], said, strict=False))
    sounds = dict(zip(flat, said[len(own):], strict=True))
    out: list[str] = []
    for n, cs in candidates.items():
        kept, heard = [], {own[n]}
        for c in cs:
            if distance(sounds[c], own[n]) == 1 and sounds[c] not in heard:
                heard.add(sounds[c])
                kept.append(c)
        for c in _spread(kept, per_word):
            out.append(" ".join(words[:n] + [c] + words[n + 1 :]))
    if len(words) > 1:
        for part, rest in ((words[1:], [own.get(n, ()) for n in range(1, len(words))]),
                           (words[:-1], [own.get(n, ()) for n in range(len(words) - 1)])):
            if sum(len(r) for r in rest) >= MIN_ALONE_PHONEMES:
                out.append(" ".join(part))
    _LOGGER.debug("near misses of %r: %s", phrase, out)
    return list(dict.fromkeys(m for m in out if m != phrase))
