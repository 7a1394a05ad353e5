"""The watchdog on the real `Service`: a source that stalls mid-run stops the WATCHDOG=1 pings
while the event loop and the process's other threads keep running; pings resume with the audio."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

from device.events import AudioChunk
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.service import Service
from device.settings import VadSettings, WakeWordSettings
from device.system.notify import Notifier, Watchdog
from hal.audio import Framer
from models.vad import SileroVad
from models.wake import WakeWordDetector, resolve_word
from tests.appliance.conftest import BindDatagram


class StallingSource:
    """Real-time 10 ms frames of silence; blocks while `flowing` is clear (a wedged ALSA read)."""

    def __init__(self) -> None:
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()

    def frames(self) -> Iterator[AudioChunk]:
        framer = Framer()
        while not self.closed.is_set():
            self.flowing.wait()
            if self.closed.is_set():
                return
            time.sleep(0.01)
            yield from framer.push(bytes(320))

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()


def _pings(sock: socket.socket, seconds: float) -> int:
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            count += sock.recv(64) == b"WATCHDOG=1"
        except TimeoutError:
            pass
    return count


def test_service_stall_stops_pings_but_not_the_process(unix_datagram: BindDatagram) -> None:
    sock, path = unix_datagram("notify", 0.05)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
    dog = Watchdog(notifier)
    source = StallingSource()
    wake = WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"))])
    frontend = Frontend(wake, SileroVad.from_builtin(), Pipeline(VadSettings()))
    service = Service(source, frontend, [], on_frame=dog.kick)
    ticks = [0]
    result: dict[str, int] = {}

    async def heartbeat() -> None:
        while True:  # the rest of the process: another task on the same event loop
            ticks[0] += 1
            await asyncio.sleep(0.02)

    async def main() -> None:
        beat = asyncio.create_task(heartbeat())
        result["status"] = await service.run()
        beat.cancel()

    runner = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    dog.start()
    runner.start()
    try:
        assert _pings(sock, 0.8) >= 3  # frames flow: pings every 150 ms
        source.flowing.clear()
        _pings(sock, 0.35)  # the last kick ages past the half-interval
        before = ticks[0]
        assert _pings(sock, 0.8) == 0  # stalled: no pings at all
        assert ticks[0] - before >= 10  # ... while the event loop keeps running
        assert runner.is_alive() and dog._thread is not None and dog._thread.is_alive()
        source.flowing.set()
        assert _pings(sock, 0.8) >= 2  # audio again: pings resume
    finally:
        service.stop()
        runner.join(10)
        dog.stop()
        wake.close()
    assert not runner.is_alive() and result["status"] == 0
