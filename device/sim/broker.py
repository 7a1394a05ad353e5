"""A private mosquitto broker on a free loopback port, for the demo, benchmarks and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from device.errors import ToolError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise ToolError("mqtt-broker", "mosquitto is not installed (scripts/setup.sh installs it)")
        self.exe = exe
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            # Without it the broker's Nagle delay adds ~40 ms to every command's round trip.
            "set_tcp_nodelay true\nlog_dest stderr\nlog_type error\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        self._proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ToolError("mqtt-broker", f"mosquitto exited: {self._proc.stderr.read().decode() if self._proc.stderr else ''}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise ToolError("mqtt-broker", "mosquitto did not start listening")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self, downtime_s: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime_s)
        self.start()
