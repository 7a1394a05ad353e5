"""Early endpointing's rule: may a command read at a short pause act now? Pure.

At `vad.early_ms` of silence the assistant reads the command so far. Ending there instead of at
the full silence is safe only when nothing the user could still add would change the action:

- the policy acts on a home sentence the audio clearly says (gap ≤ half the policy's MAX_GAP);
- the words name the device, or no longer sentence starts with them: "turn on the lights" may
  still get its area ("... in the bedroom"), which changes which lights — even when the
  speaker's own area has just one light, so the call names one device without the words doing
  so — but "turn off the lights in the kitchen" can't go on (area-wide commands are 16 of the
  248 local commands of the e2e evaluation set that the grammar holds, and 14 name their area);
- no longer sentence of the grammar that starts with it adds a value ("set the blinds" → "to
  50", "set a timer for 5 minutes" → "and 10 seconds"). Qualifiers that don't carry a number
  ("percent", "degrees", "lights", "in the kitchen" after a named device) leave the action as it is.

The command is read while it is spoken (device/listening/reads.py), so the reading that heard all
of it is often ready soon after the pause starts; at a shorter pause (`vad.quick_ms`) it acts
only if the reading before it, of less audio, was the same call: then the last words were heard
twice and didn't change it.

Everything else keeps the normal endpoint, so an open question for the cloud, a yes/no answer
and a doubtful reading cost nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from device.intent.decision import Decision
from device.intent.policy import MAX_GAP, Choice

EARLY_MAX_GAP = MAX_GAP / 2
"""Per-token log-probability deficit of the home sentence against the free reading above which
a pause is not enough: in-grammar speech on the tuning voices has median 0.10, p90 0.61."""
_NUMBER = re.compile(r"\d")


def acts_early(choice: Choice | None, gap: float | None, continuations: Iterable[str], *,
               short: bool = False, before: Choice | None = None) -> tuple[bool, str]:
    """Whether to end the utterance at the pause, and why (logged). A `short` pause (`vad.quick_ms`)
    is enough only when the reading before this one (`before`, of less audio) was the same call."""
    if choice is None or choice.verdict != "act":
        return False, "the policy doesn't act on it"
    decision: Decision = choice.decision
    if short and (before is None or before.verdict != "act" or before.decision.call != decision.call):
        return False, "not the same reading twice yet"
    if gap is None or gap > EARLY_MAX_GAP:
        return False, "the audio doesn't clearly say a home sentence"
    if decision.kind != "tool" or decision.call is None:
        return False, "not a home command"
    longer_sentences = tuple(continuations)
    named = decision.meaning is not None and "name" in decision.meaning.spoken
    if not named and longer_sentences:
        return False, "a command that doesn't name its device may still get its area"
    longer = next((c for c in longer_sentences if _NUMBER.search(c)), None)
    if longer is not None:
        return False, "a longer sentence adds a value"  # (not which: the words stay out of logs)
    return True, "a complete command"
