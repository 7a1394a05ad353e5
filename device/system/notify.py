"""sd_notify in the few lines it takes, plus a watchdog that only pings while the audio loop runs.

The protocol: one datagram of `KEY=value` lines to the unix socket named by $NOTIFY_SOCKET
('@' prefix = abstract namespace). Without the variable (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

_LOG = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; silently inert when not started by systemd with Type=notify."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # '@' means the Linux abstract namespace, written as a leading NUL byte.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        # WATCHDOG_PID names the process systemd watches; a child that inherited the
        # environment (a TTS subprocess, `voxhome doctor` from a shell in the unit) must not ping.
        watched = env.get("WATCHDOG_PID", "")
        mine = not watched or watched == str(os.getpid())
        self.watchdog_s: float | None = (
            int(usec) / 1e6 if mine and usec.isdigit() and int(usec) > 0 else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, **fields: str) -> bool:
        """Send e.g. send(READY="1", STATUS="listening"); returns False when it could not."""
        if not self._address:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self._address)
        except OSError as err:
            # Why not raise: a lost notification must never take the speaker down.
            _LOG.warning("sd_notify failed: %s", err)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send(READY="1", **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def stopping(self) -> bool:
        return self.send(STOPPING="1")

    def ping(self) -> bool:
        return self.send(WATCHDOG="1")


class Watchdog:
    """Pings WATCHDOG=1 at half the watchdog interval, but only while `kick()` keeps being called.

    The audio loop calls kick() per frame; a thread pings when the last kick is fresher than the
    interval. A stalled audio loop therefore stops the pings even though the rest of the process
    (this thread, asyncio, MQTT) still runs, and systemd restarts the service.
    """

    def __init__(
        self,
        notifier: Notifier,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._timeout_s = interval_s if interval_s is not None else notifier.watchdog_s
        self._clock = clock
        self._last_kick: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    def kick(self) -> None:
        self._last_kick = self._clock()

    def should_ping(self, now: float) -> bool:
        """Pure decision: ping only if the audio loop kicked within the last half-interval."""
        if self._timeout_s is None or self._last_kick is None:
            return False
        return now - self._last_kick <= self._timeout_s / 2

    def start(self) -> None:
        if self._timeout_s is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="voxhome-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        assert self._timeout_s is not None
        period = self._timeout_s / 2
        while not self._stop.wait(period):
            if self.should_ping(self._clock()) and self._notifier.ping():
                self.pings += 1
            elif self._last_kick is not None:
                _LOG.warning("audio loop stalled; withholding watchdog ping")
