"""The asyncio shell around the pure parts: source → front end → pipeline → emit(event).

The source is a blocking iterator, so it runs in a reader thread that hands frames to the event
loop through a bounded queue (a stalled consumer makes the reader wait, and an ALSA source then
counts overruns instead of the process growing without bound). The run always ends: at the end
of a file, on `stop()`, or on an error, which becomes an `Error` event before the run returns.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence

from device.errors import ConfigError, VoxError
from device.events import AudioChunk, Error
from device.listening.frontend import Frontend
from device.listening.pipeline import Event
from device.settings import MicSettings
from hal.source import AudioSource, FileSource, NullSource

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[Event], None | Awaitable[None]]

QUEUE_FRAMES = 200
"""2 s of 10 ms frames between the reader thread and the loop."""


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Service:
    def __init__(
        self,
        source: AudioSource,
        frontend: Frontend,
        handlers: Sequence[Handler],
        *,
        muted: Callable[[], bool] = lambda: False,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self._on_frame = on_frame
        """Called by the loop for every frame it takes (the systemd watchdog's kick): a stalled
        source or a stuck loop stops the calls, whatever other threads keep doing."""
        self._frontend = frontend
        self._handlers = list(handlers)
        self._muted = muted
        """While true, frames are read (the loop stays alive for the watchdog) but dropped
        before any model sees them: the microphone path does nothing while muted."""
        self._stopping = threading.Event()
        self._control: list[Callable[[int], Event]] = []
        self.position_ms = 0

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def inject(self, make: Callable[[int], Event]) -> None:
        """Feed a control event to the pipeline before the next frame, made at that frame's
        audio time (a follow-up's StartListening is stamped where listening really begins)."""
        self._control.append(make)

    def stop(self) -> None:
        self._stopping.set()
        self._source.close()

    async def run(self) -> int:
        """Run until the source ends; return 0, or 1 if the run ended on an error."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AudioChunk | _End] = asyncio.Queue(QUEUE_FRAMES)
        reader = threading.Thread(target=self._read, args=(loop, queue), name="audio-reader", daemon=True)
        reader.start()
        status = 0
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        status = 1
                        await self._emit(_as_error(item.error, self.position_ms))
                    break
                if self._stopping.is_set():
                    break
                self.position_ms = item.end_ms
                if self._on_frame is not None:
                    self._on_frame()
                if self._muted():
                    continue
                while self._control:
                    for event in self._frontend.pipeline.feed(self._control.pop(0)(item.timestamp_ms)):
                        await self._emit(event)
                for event in self._frontend.process(item):
                    await self._emit(event)
            for event in self._frontend.finish(self.position_ms):
                await self._emit(event)
        except VoxError as err:
            status = 1
            await self._emit(_as_error(err, self.position_ms))
        finally:
            self.stop()
            # The reader may be blocked handing us a frame; drain so it can see the stop flag.
            while reader.is_alive():
                while not queue.empty():
                    queue.get_nowait()
                await asyncio.sleep(0.01)
        return status

    def _read(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[AudioChunk | _End]) -> None:
        end = _End()
        frames = self._source.frames()
        try:
            for chunk in frames:
                if self._stopping.is_set():
                    break
                asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except BaseException as err:  # the loop must always hear why the reader ended
            end = _End(err)
        finally:
            # A generator source releases its device (an ALSA PCM) now, not whenever GC runs.
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        try:
            asyncio.run_coroutine_threadsafe(queue.put(end), loop).result()
        except RuntimeError:
            pass  # the loop is already gone

    async def _emit(self, event: Event) -> None:
        for handler in self._handlers:
            result = handler(event)
            if inspect.isawaitable(result):
                await result


def _as_error(err: BaseException, at_ms: int) -> Error:
    if isinstance(err, VoxError):
        _LOGGER.error("run ended: [%s] %s", err.code, err.message, extra={"code": err.code})
        return Error(code=err.code, message=err.message, timestamp_ms=at_ms)
    _LOGGER.error("run ended on an unexpected error", exc_info=err)
    return Error(code="internal", message=f"{type(err).__name__}: {err}", timestamp_ms=at_ms)


def open_source(mic: MicSettings, audio: str | None = None, *, realtime: bool = False) -> AudioSource:
    """`--audio FILE` wins; otherwise the configured microphone backend."""
    if audio is not None:
        return FileSource(audio, realtime=realtime)
    if mic.backend == "file":
        if not mic.file:
            raise ConfigError("config-value", "audio.mic.file must be set when audio.mic.backend = 'file'")
        return FileSource(mic.file, realtime=realtime)
    if mic.backend == "null":
        return NullSource()
    from hal.alsa import AlsaSource

    return AlsaSource(mic)
