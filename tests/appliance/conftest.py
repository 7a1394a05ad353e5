"""Shared pieces for the appliance tests: the unix datagram sockets systemd listens on."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BindDatagram = Callable[[str, float], tuple[socket.socket, str]]


@pytest.fixture
def unix_datagram(tmp_path: Path) -> Iterator[BindDatagram]:
    """`bind(name, timeout)` → a bound unix datagram socket in tmp_path and its path; closed after."""
    opened: list[socket.socket] = []

    def bind(name: str, timeout: float) -> tuple[socket.socket, str]:
        path = str(tmp_path / name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        opened.append(sock)
        sock.bind(path)
        sock.settimeout(timeout)
        return sock, path

    yield bind
    for sock in opened:
        sock.close()
