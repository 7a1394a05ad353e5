"""End of speech, decided from VAD probabilities and audio time alone (no clock, no I/O).

Fed one VAD window at a time after a wake word, it says when the command started, when it
ended (after `end_silence_ms` of silence, or at the length cap) or that nobody spoke.
With `early_ms`, it also says once per pause that the speaker has been quiet that long
(`Paused`), so the command so far can be read while the normal end is still pending; `end_now`
ends the command at that pause if nobody spoke since. With `quick_ms` a shorter pause is said
first (`Paused(short=True)`), and with `redecode_ms` the growing command is offered for reading
(`Progress`) every that much audio while it is spoken and once more at the first silent window,
so a reading of all of it can start before the pause is long enough to act on. Hysteresis: a window counts as speech at `threshold` but as silence only below
`threshold - HYSTERESIS`, so a soft syllable in the middle of a command doesn't end it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from device.settings import VadSettings

HYSTERESIS = 0.15


class Phase(enum.Enum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Started:
    start_ms: int
    """Where the first speech window of the run began."""


@dataclass(frozen=True, slots=True)
class Ended:
    end_ms: int
    """Our estimate of the end of speech: the end of the last speech window."""
    decided_ms: int
    """When the decision could be made (end_ms + the silence it took to be sure)."""
    reason: str
    """'silence' or 'max_length'."""


@dataclass(frozen=True, slots=True)
class Paused:
    end_ms: int
    """The end of the last speech window before the pause."""
    decided_ms: int
    """Where `early_ms` (or `quick_ms`) of silence was reached."""
    short: bool = False
    """Only `quick_ms` so far: enough for a reading that is stable across two decodes."""


@dataclass(frozen=True, slots=True)
class Progress:
    end_ms: int
    """The end of the last speech window so far."""
    decided_ms: int
    """The audio so far ends here."""


@dataclass(frozen=True, slots=True)
class TimedOut:
    decided_ms: int


Decision = Started | Paused | Progress | Ended | TimedOut


class Segmenter:
    def __init__(self, settings: VadSettings, wake_ms: int) -> None:
        self._s = settings
        self._wake_ms = wake_ms
        self.phase = Phase.WAITING
        self._run_start_ms: int | None = None
        self._speech_start_ms = 0
        self._last_speech_end_ms = 0
        self._paused: set[int] = set()
        """The pause lengths already said for the current pause (cleared when speech resumes)."""
        self._offered_ms = 0
        """Where the last Progress ended; the first silent window of a pause is always offered."""
        self._quiet_offered = False

    def process(self, start_ms: int, duration_ms: int, probability: float) -> list[Decision]:
        """One VAD window [start_ms, start_ms + duration_ms) → the decisions it completes."""
        end_ms = start_ms + duration_ms
        if self.phase is Phase.WAITING:
            return self._waiting(start_ms, end_ms, probability)
        if self.phase is Phase.SPEAKING:
            return self._speaking(end_ms, probability)
        return []

    def _waiting(self, start_ms: int, end_ms: int, probability: float) -> list[Decision]:
        if probability >= self._s.threshold:
            if self._run_start_ms is None:
                self._run_start_ms = start_ms
            if end_ms - self._run_start_ms >= max(self._s.speech_start_ms, 1):
                self.phase = Phase.SPEAKING
                self._speech_start_ms = self._run_start_ms
                self._last_speech_end_ms = end_ms
                self._offered_ms = end_ms
                return [Started(self._run_start_ms)]
        else:
            self._run_start_ms = None
        if end_ms - self._wake_ms >= self._s.start_timeout_ms:
            self.phase = Phase.DONE
            return [TimedOut(end_ms)]
        return []

    def _speaking(self, end_ms: int, probability: float) -> list[Decision]:
        if probability >= self._s.threshold - HYSTERESIS:
            self._last_speech_end_ms = end_ms
            self._paused = set()
            self._quiet_offered = False
        if end_ms - self._speech_start_ms >= self._s.max_command_ms:
            self.phase = Phase.DONE
            return [Ended(end_ms, end_ms, "max_length")]
        if end_ms - self._last_speech_end_ms >= self._s.end_silence_ms:
            self.phase = Phase.DONE
            return [Ended(self._last_speech_end_ms, end_ms, "silence")]
        if not self._s.early_ms:
            return []
        out: list[Decision] = []
        silence = end_ms - self._last_speech_end_ms
        if self._s.redecode_ms and (silence == 0 and end_ms - self._offered_ms >= self._s.redecode_ms
                                    or silence > 0 and not self._quiet_offered):
            # Nothing new is heard in a pause after its first silent window: one reading covers it.
            self._quiet_offered = silence > 0
            self._offered_ms = end_ms
            out.append(Progress(self._last_speech_end_ms, end_ms))
        for length in sorted(x for x in (self._s.quick_ms, self._s.early_ms) if 0 < x <= self._s.early_ms):
            if length not in self._paused and silence >= length:
                self._paused.add(length)
                out.append(Paused(self._last_speech_end_ms, end_ms, short=length < self._s.early_ms))
        return out

    def end_now(self, pause_end_ms: int, decided_ms: int) -> list[Decision]:
        """End at the pause whose speech ended at `pause_end_ms`, unless speech resumed since
        (then the command is longer than what was read, and the normal end decides)."""
        if self.phase is not Phase.SPEAKING or self._last_speech_end_ms != pause_end_ms:
            return []
        self.phase = Phase.DONE
        return [Ended(pause_end_ms, decided_ms, "early")]

    def finish(self, at_ms: int) -> list[Decision]:
        """The audio ended: close what is open."""
        if self.phase is Phase.SPEAKING:
            self.phase = Phase.DONE
            return [Ended(self._last_speech_end_ms, at_ms, "end_of_audio")]
        if self.phase is Phase.WAITING:
            self.phase = Phase.DONE
            return [TimedOut(at_ms)]
        return []
