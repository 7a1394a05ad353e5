"""Where the command starts after a wake word: the pause after the word, found by the VAD.

The utterance handed to speech recognition must start where the wake word's audio ends, or
Whisper transcribes the word's tail ("…bu, turn on …" → "Bu, turn on …"). The wake model's own
estimate (`Detection.end_ms`, where its probability rose) is only good to about ±100 ms, and
the detection itself comes 100-300 ms after the word. The VAD is precise about the short
pause people leave after a wake word: the front end runs it over the pre-roll, and the cut is
where the VAD stopped being sure of speech before the first pause that follows the word, near
the estimate. With no pause to find
(a command spoken straight on, or noise that hides the pause) the cut falls back to the
estimate, moved back by a margin so the command's first syllable is kept.

Pure: windows and a detection in, a time out, so it is decided on audio time alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from device.events import Detection, SpeechProbability
from device.listening.segmenter import HYSTERESIS

SEARCH_BEFORE_MS = 150
"""The pause is looked for from this long before the model's estimate (which can be late)…"""
SEARCH_AFTER_MS = 100
"""…to this long after the detection (which can fire before the word's tail has faded). Short:
speech that starts after the detection and pauses is the command, not the wake word."""
CONFIDENT = 0.9
"""In noise the VAD's probability decays slowly after a word (150-250 ms at 10 dB SNR) and its
first silent window can lie past the start of a quickly following command; the cut is therefore
the end of the last window at least this sure of speech before that silent window."""
MIN_PAUSE_WINDOWS = 2
"""A pause is at least this many silent windows (64 ms) after sure speech: a single low window
between two sure ones is a stop consonant inside a command spoken straight on ("wha|t is"), and
cutting there loses a word. One silent window is enough once the probability was already falling
(the word fading out before a quick command)."""
NO_PAUSE_BACK_MS = 50
"""With no pause found, cut this long before the estimate (whose median is ~+50 ms late for
okay_nabu): the side of the trade-off that keeps the command's first syllable. Measured on the
tuning voices with no pause / 60 ms pause (42 woken cases): back 0 → 5 remnants, 5 lost first
words; back 50 → 5 and 2; over all 137 cases back 120 was no better than back 60 or 0
(tests/frontend/wake_cut_eval.py)."""


def search_until_ms(detection: Detection) -> int:
    """A pause must start by this time to be the wake word's."""
    return detection.timestamp_ms + SEARCH_AFTER_MS


def keep_until_ms(detection: Detection) -> int:
    """VAD windows after this cannot change the cut (a pause that starts at the end of the search
    range still needs its following windows), so the pipeline stops keeping them."""
    return search_until_ms(detection) + 200


def wake_cut_ms(
    detection: Detection,
    windows: Sequence[SpeechProbability],
    threshold: float,
    *,
    confident: float = CONFIDENT,
    back_ms: int = NO_PAUSE_BACK_MS,
    min_pause: int = MIN_PAUSE_WINDOWS,
) -> int:
    """Audio time where the command starts: where the VAD stopped being sure of speech, before
    the first pause (`MIN_PAUSE_WINDOWS` below the silence level) that follows speech heard
    before the detection (the wake word itself) and starts inside the search range; with no
    such pause, the model's estimate less `back_ms`."""
    silent = threshold - HYSTERESIS
    lo = detection.end_ms - SEARCH_BEFORE_MS
    hi = search_until_ms(detection)
    heard_speech = False
    sure_end: int | None = None
    falling = False
    pause: list[SpeechProbability] = []
    for window in windows:
        if window.timestamp_ms > hi and not pause:
            break
        if window.probability < silent and heard_speech and (pause or window.timestamp_ms >= lo):
            pause.append(window)
            if len(pause) >= (1 if falling else min_pause):
                start = pause[0].timestamp_ms
                return start if sure_end is None else min(sure_end, start)
            continue
        pause = []
        if window.timestamp_ms > hi:
            break
        falling = window.probability < confident
        if window.probability >= confident:
            sure_end = window.end_ms
        if window.probability >= threshold:
            heard_speech = heard_speech or window.timestamp_ms < detection.timestamp_ms
    return detection.end_ms - back_ms
