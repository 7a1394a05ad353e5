"""Giving up a reading under way: another thread asks, the runner stops at the next operator.

A reading of half a command that is still running when the speaker falls quiet can no longer be
the one acted on (it never heard the last words), yet the reading that can waits for it on the
one worker. `Stop` lets the reader end it early: onnxruntime checks `RunOptions.terminate`
between the operators of a graph, and the decoding loops check `requested` between steps, so a
stopped reading ends within one operator (well under a millisecond on tiny.en) and raises
`Stopped`; nothing half-read is ever returned.
"""

from __future__ import annotations

import onnxruntime as ort


class Stopped(Exception):
    """The reading was given up on request (not a failure)."""


class Stop:
    def __init__(self) -> None:
        self.options = ort.RunOptions()
        """Passed to every `InferenceSession.run` of the reading."""
        self.requested = False

    def __call__(self) -> None:
        """Ask the reading to give up (from any thread)."""
        self.requested = True
        self.options.terminate = True

    def check(self) -> None:
        """Raise `Stopped` if asked: called between decoding steps."""
        if self.requested:
            raise Stopped


def run_options(stop: Stop | None) -> ort.RunOptions | None:
    return stop.options if stop is not None else None


def stopped(stop: Stop | None, err: Exception) -> bool:
    """Whether onnxruntime's error is the stop it was asked for (and not a real failure)."""
    return stop is not None and stop.requested and "terminate" in str(err).lower()
