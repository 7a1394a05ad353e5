"""sd_notify against a real unix datagram socket, and the watchdog stopping when audio stalls."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from device.system.notify import Notifier, Watchdog
from tests.appliance.conftest import BindDatagram


@pytest.fixture
def notify_socket(unix_datagram: BindDatagram) -> tuple[socket.socket, str]:
    return unix_datagram("notify", 2.0)


def _drain(sock: socket.socket, seconds: float) -> list[str]:
    got: list[str] = []
    end = time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < end:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return got


def test_ready_status_watchdog_stopping(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    assert n.enabled and n.watchdog_s == pytest.approx(0.2)
    assert n.ready("listening")
    assert sock.recv(4096) == b"READY=1\nSTATUS=listening"
    assert n.status("cloud offline")
    assert sock.recv(4096) == b"STATUS=cloud offline"
    assert n.ping()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace() -> None:
    name = f"voxhome-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_watchdog_only_for_the_watched_pid(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "1000000"}
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 1.0
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_s is None
    assert Notifier({**env, "WATCHDOG_USEC": "0"}).watchdog_s is None


def test_without_systemd_is_inert() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_s is None
    assert not n.ready()


def test_missing_socket_does_not_raise(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ping()


def test_should_ping_is_pure() -> None:
    now = [100.0]
    dog = Watchdog(Notifier({}), interval_s=10.0, clock=lambda: now[0])
    assert not dog.should_ping(100.0)  # never kicked: the audio loop has not started
    dog.kick()
    assert dog.should_ping(104.9)
    assert not dog.should_ping(105.1)


def test_stalled_audio_loop_stops_pings(notify_socket: tuple[socket.socket, str]) -> None:
    """A real thread feeds frames, then stalls; the pings stop while the process goes on."""
    sock, path = notify_socket
    dog = Watchdog(Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}))
    stall = threading.Event()
    stop = threading.Event()
    frames = [0]

    def audio_loop() -> None:
        while not stop.is_set():
            if stall.is_set():
                stop.wait(0.5)  # stuck, e.g. a blocked ALSA read
                continue
            frames[0] += 1
            dog.kick()
            time.sleep(0.01)  # one 10 ms frame

    loop = threading.Thread(target=audio_loop, daemon=True)
    loop.start()
    dog.start()
    try:
        healthy = _drain(sock, 0.6)
        assert healthy.count("WATCHDOG=1") >= 3
        stall.set()
        time.sleep(0.25)  # let the last fresh kick age past the half-interval
        _drain(sock, 0.05)
        stalled = _drain(sock, 0.6)
        assert stalled == []
        # The rest of the process still runs: the watchdog thread and this one are alive.
        assert loop.is_alive() and dog._thread is not None and dog._thread.is_alive()
        stall.clear()
        assert "WATCHDOG=1" in _drain(sock, 0.6)  # recovers when audio resumes
    finally:
        stop.set()
        dog.stop()
        loop.join()
