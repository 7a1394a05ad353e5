"""Rejection before action: decide from the free and the constrained reading together. Pure.

The free transcript is what Whisper heard with no expectations; the constrained reading is the
best sentence the home can hear. Either alone misleads: free decoding drifts on short commands
("The thermostat of 21 degrees"), and constrained decoding always returns *some* home sentence,
even for "what is the tallest mountain". So:

- both readings agree on the action → act;
- the constrained reading is a command and the audio supports it (its per-token log-probability is
  close to the free reading's, or, without scores, the free words carry its content words) → act;
- the two readings differ on a risky action (lock/unlock, open/close a garage) → ask, don't guess;
- the free reading names something the home doesn't have → refuse locally, publish nothing;
- otherwise → the cloud (or the free reading's own local answer).

A wrong publish is worse than a miss, so every doubtful case falls to "not local".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from device.intent.decision import Decision
from device.intent.language import spoken_decimals

Verdict = Literal["act", "ask", "free"]

MAX_GAP = 1.5
"""Largest per-token log-probability deficit (nats) of the constrained reading against the free
one that still counts as 'the audio says this'. On the tuning voices (bench grammar): in-grammar
speech median 0.10, p90 0.61, max 1.12 clean; out-of-grammar speech min 2.94, median 3.8."""
_LOCAL = frozenset({"tool", "answer", "speaker", "timer"})
MIN_OVERLAP = 0.5
"""Without scores: the share of the constrained sentence's content words the free text carries."""
_RISKY = {"unlock": "lock", "lock": "unlock", "open_cover": "close_cover", "close_cover": "open_cover"}
_FILLER = frozenset("a an the to of in on at is are be it its it's my me please what whats what's set turn make "
                    "can could you would i hey okay ok and for this that on off up down".split())


@dataclass(frozen=True, slots=True)
class Choice:
    verdict: Verdict
    decision: Decision
    reason: str


def choose(free: Decision, constrained: Decision | None, *, gap: float | None = None, accepted: bool = True) -> Choice:
    """`gap`: mean log-prob per token of the free reading minus the constrained one (≥ 0 when
    the free reading is likelier), or None when the recognizer gives no scores. `accepted`:
    whether the word graph accepts the constrained reading's text (`GrammarGraph.accepts`)."""
    if not accepted:
        # Defence in depth: the search should only ever return the graph's sentences, but a
        # reading outside it ('the,porch light') is not what the home can hear: never act on it.
        return Choice("free", free, "the constrained reading is not a sentence of the home's graph")
    if constrained is None or constrained.kind not in _LOCAL or (constrained.kind == "tool" and constrained.call is None):
        return Choice("free", free, "no home sentence fits")
    if free.kind == constrained.kind and free.call == constrained.call and free.action == constrained.action:
        return Choice("act", free, "both readings agree")
    if free.kind == "tool" and free.call is not None and constrained.call is not None \
            and _RISKY.get(free.call.name) == constrained.call.name and free.call.arguments == constrained.call.arguments:
        return Choice("ask", constrained, f"heard both {free.call.name} and {constrained.call.name}")
    if free.kind == "reject" and (gap is None or gap > MAX_GAP / 2):
        # 'the basement light' is not the thermostat: only audio that clearly says a home
        # sentence ('the kitchen lied' → light) overrides a refusal, and text alone never does.
        return Choice("free", free, "the free reading names something the home doesn't have")
    if free.kind in ("answer", "speaker", "timer"):
        return Choice("free", free, "the free reading is the speaker's own")
    supported = gap <= MAX_GAP if gap is not None else overlap(free.text, constrained.text) >= MIN_OVERLAP
    if not supported:
        return Choice("free", free, "the audio doesn't support the home sentence")
    conflict = disagreement(free.text, constrained.text)
    if conflict is not None:
        # Close in log-probability is not the same command: 'power up' read as 'power off', or
        # '75' read as '7', differ by one short token. The home sentence acts only when the free
        # reading does not contradict it.
        return Choice("free", free, conflict)
    if free.kind in _LOCAL:
        # Two different commands, both plausible: only the one the audio supports better acts.
        return Choice("act", constrained if gap is not None and gap <= 0 else free, "two readings; the likelier acts")
    return Choice("act", constrained, "the home sentence fits the audio")


_UP = frozenset("on up open start raise increase brighten brighter unlock higher warmer louder".split())
_DOWN = frozenset("off down close closed shut stop lower decrease dim dimmer lock kill cut lower cooler quieter".split())
_ONES = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * n for n, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if n >= 2}


def disagreement(free_text: str, sentence: str) -> str | None:
    """Why the free reading contradicts the home sentence, or None: where the two differ, a
    direction word of one against the opposite direction in the other, or a number in the sentence
    that the free reading doesn't say (in digits or words). A free word that is merely misheard
    ("of" for "off", "land" for "lamp") is no contradiction."""
    have, want = _words(free_text), _words(sentence)
    matcher = difflib.SequenceMatcher(a=have, b=want, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        heard, read = set(have[i1:i2]), set(want[j1:j2])
        if (heard & _UP and read & _DOWN) or (heard & _DOWN and read & _UP):
            return f"the readings disagree: {' '.join(have[i1:i2])!r} against {' '.join(want[j1:j2])!r}"
    said = _numbers(have)
    for number in _numbers(want):
        if number not in said:
            return f"the free reading doesn't say {number:g}"
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?|[a-z']+", spoken_decimals(text.lower()).replace("%", " percent ").replace("-", " "))


def _numbers(words: list[str]) -> list[float]:
    """Numbers in digits, and in words ('twenty one', 'seven', 'a hundred')."""
    out: list[float] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w[0].isdigit():
            out.append(float(w))
        elif w in _TENS:
            n = _TENS[w]
            if i + 1 < len(words) and 0 < _ONES.get(words[i + 1], 0) < 10:
                n += _ONES[words[i + 1]]
                i += 1
            out.append(float(n))
        elif w in _ONES:
            out.append(float(_ONES[w]))
        elif w == "hundred":
            out.append(100.0)
        i += 1
    return out


def overlap(free_text: str, sentence: str) -> float:
    """Share of the sentence's content words found (fuzzily, in order) in the free text."""
    want = _content(sentence)
    if not want:
        return 0.0
    have = _content(free_text)
    matcher = difflib.SequenceMatcher(a=want, b=have, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(want)


def _content(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+(?:\.\d+)?", text.lower().replace("%", " percent"))
    return [w for w in words if w not in _FILLER]
