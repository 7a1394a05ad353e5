"""Reading a command while it is spoken: early endpointing's decode worker.

The pipeline offers the growing utterance (`SpeechSoFar`) every `vad.redecode_ms` of audio and
once more at the first quiet window after speech. One reading runs at a time, in a worker
thread, so the always-on wake words and the VAD on the event loop keep their core: an offer
that arrives while a reading is under way is not read at once; only the newest one waits, and
starts the moment the worker is free (audio time decides what is read, the worker's speed only
how soon). A pause then asks for the newest reading that heard all of the speech before it
(`covering`): already there, under way, queued, or — when nothing offered covers it — read now.
A reading of mid-speech audio still under way when the speaker falls quiet is given up
(models/asr/stop.py): it can never be the one acted on, and the one that can would wait for it.
One that already heard all the speech is not: it can ask `heard_the_end` and finish as the
pause's reading (the grammar searched on audio it has already encoded), and the pause's own
offer, waiting behind it, is then never read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from device.events import SpeechPaused, SpeechSoFar
from models.asr.stop import Stop, Stopped

_LOGGER = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Read(Generic[R]):
    """One reading of the utterance from its start to `heard_ms` (audio time)."""

    speech_end_ms: int
    """The end of speech that audio held (== `heard_ms` while the user was still speaking)."""
    heard_ms: int
    reading: R
    complete: bool
    """The reading went as far as a command's reading goes (a home sentence, or the grammar
    searched); a read of half a command in mid-speech is kept only to compare with the next."""
    decode_ms: float


Source = SpeechSoFar | SpeechPaused


class GrowingReads(Generic[R]):
    def __init__(self, read: Callable[[Source, Stop], tuple[R, bool]]) -> None:
        self._read = read
        """Runs in the worker thread: the reading of an offer's audio, and whether it is complete
        (it may raise `Stopped` once its `Stop` is called)."""
        self._reads: list[Read[R]] = []
        self._task: asyncio.Task[None] | None = None
        self._queued: Source | None = None
        self._current: tuple[Source, Stop] | None = None
        """The offer being read, and how to give it up."""
        self._generation = 0
        self.decodes = 0
        self.skipped = 0
        """Offers that never got read: a newer one replaced them while the worker was busy, or a
        complete reading that heard all their speech came first."""
        self.stopped = 0
        """Readings of mid-speech audio given up because the speaker fell quiet."""
        self._speech_end: int | None = None
        """Where the last pause put the end of speech (None while speaking). Written on the event
        loop, read by the worker thread (`heard_the_end`): a plain int, swapped whole."""
        self._changed = asyncio.Event()
        """Set (and replaced) after each reading: a pause waits for the next one, not the worker's end."""

    def heard_the_end(self, so_far: Source) -> bool:
        """The speaker has fallen quiet within this offer's audio: its reading, though offered
        mid-speech, heard all the speech (the worker thread may ask while reading it)."""
        end = self._speech_end
        return end is not None and so_far.decided_ms >= end

    def offer(self, so_far: Source) -> None:
        """Read this audio now if the worker is free; else it waits, replacing an older wait."""
        in_pause = so_far.decided_ms > so_far.timestamp_ms
        if in_pause:
            self._speech_end = so_far.timestamp_ms
        elif self._speech_end is not None and so_far.timestamp_ms > self._speech_end:
            self._speech_end = None  # speaking again
        if self._task is not None and not self._task.done():
            self.skipped += self._queued is not None
            self._queued = so_far
            if so_far.decided_ms > so_far.timestamp_ms:
                self._give_up_below(so_far.timestamp_ms)
            return
        self._current = (so_far, Stop())
        self._task = asyncio.create_task(self._run(self._current, self._generation))

    def _give_up_below(self, speech_end_ms: int) -> None:
        """Speech ended at `speech_end_ms`: a reading under way of less audio can't be acted on."""
        if self._current is not None and self._current[0].decided_ms < speech_end_ms:
            self._current[1]()

    def reset(self) -> None:
        """A new utterance: earlier readings and the waiting offer belong to the last one (a
        reading under way finishes, and is dropped)."""
        self._generation += 1
        self._reads = []
        self._queued = None
        self._speech_end = None

    def latest(self) -> Read[R] | None:
        return self._reads[-1] if self._reads else None

    async def covering(self, paused: SpeechPaused) -> tuple[Read[R] | None, Read[R] | None]:
        """The newest complete reading that heard all the speech before `paused` (waiting for
        one under way or queued, or reading the pause's own audio), and the reading before it."""
        generation, asked = self._generation, False
        while generation == self._generation:
            for i in range(len(self._reads) - 1, -1, -1):
                read = self._reads[i]
                if read.heard_ms >= paused.timestamp_ms and read.complete:
                    return read, self._reads[i - 1] if i else None
            running = self._task is not None and not self._task.done()
            current = self._current[0] if running and self._current is not None else None
            if not any(s is not None and s.decided_ms >= paused.timestamp_ms for s in (current, self._queued)):
                if asked:
                    return None, None  # the pause's own reading failed (the worker logged why)
                # Nothing under way or waiting hears all of it: read the pause's own audio, now or
                # next (what is under way is given up).
                self.offer(paused)
                asked = True
            await self._changed.wait()
        return None, None

    def _signal(self) -> None:
        """Wake what waits for a reading; the next wait is on a fresh event (a set one would
        return at once, and a waiting pause would spin without ever yielding)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _covered(self, so_far: Source) -> bool:
        """A quiet window's offer whose speech a complete reading already heard all of (the rest
        of its audio is the silence after it). Mid-speech offers are always read: more speech."""
        in_pause = so_far.decided_ms > so_far.timestamp_ms
        return in_pause and any(r.complete and r.heard_ms >= so_far.timestamp_ms for r in self._reads)

    async def _run(self, current: tuple[Source, Stop], generation: int) -> None:
        try:
            await self._read_all(current, generation)
        finally:
            self._signal()  # a pause waiting for a reading must not outlive the worker

    async def _read_all(self, current: tuple[Source, Stop], generation: int) -> None:
        while True:
            started = time.perf_counter()
            so_far, stop = self._current = current
            try:
                reading, complete = await asyncio.to_thread(self._read, so_far, stop)
            except Stopped:
                self.stopped += 1
                _LOGGER.debug("gave up reading the command up to %d ms after %.0f ms", so_far.decided_ms,
                              1000 * (time.perf_counter() - started))
            except Exception:  # the normal end still comes; a reading is only a shortcut
                _LOGGER.exception("reading the command so far failed")
            else:
                self.decodes += 1
                took = 1000 * (time.perf_counter() - started)
                if generation == self._generation:
                    self._reads = [*self._reads[-1:], Read(so_far.timestamp_ms, so_far.decided_ms, reading, complete, took)]
                _LOGGER.debug("read the command up to %d ms in %.0f ms", so_far.decided_ms, took)
            self._current = None
            self._signal()
            if self._queued is not None and self._covered(self._queued):
                self.skipped += 1
                self._queued = None  # a reading that heard all the speech is already complete
            if self._queued is None:
                return
            # What waits was offered after the last reset, so it belongs to the current utterance.
            current, self._queued, generation = (self._queued, Stop()), None, self._generation
