"""Is Home Assistant connected? The server's status file and `voxhome doctor`'s check of it.

The running service writes who is connected to `<state_dir>/esphome-status.json` on every connect
and disconnect (tmp + rename, so the doctor never reads half a file; it is volatile state, so a
power cut losing the last write costs nothing: the port check below catches a service that is down).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from device.settings import Settings
from device.system.doctor import Check

STATUS_FILE = "esphome-status.json"


def status_path(settings: Settings) -> Path:
    return Path(settings.device.state_dir) / STATUS_FILE


def write_status(path: Path, peers: list[str], voice: str | None, port: int) -> None:
    body = json.dumps({"peers": peers, "voice": voice, "port": port, "at": time.time()}).encode()
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(body)
        os.replace(tmp, path)
    except OSError:
        pass  # the doctor then reports the status unknown; serving HA matters more than this file


def check_esphome(settings: Settings, host: str = "127.0.0.1", timeout_s: float = 2.0) -> Check:
    cfg = settings.esphome
    if not cfg.enabled:
        return Check("home assistant", "skip", "[esphome] enabled = false")
    mode = f"{'Noise' if cfg.encryption_key else 'plaintext'}, {cfg.mode}"
    try:
        with socket.create_connection((host, cfg.port), timeout=timeout_s):
            pass
    except OSError as err:
        return Check("home assistant", "fail", f"nothing listens on port {cfg.port} ({err.strerror or err})",
                     "is the voxhome service running? `systemctl status voxhome`")
    try:
        status = json.loads(status_path(settings).read_text())
        peers, voice = list(status["peers"]), status.get("voice")
    except (OSError, ValueError, KeyError, TypeError):
        return Check("home assistant", "warn", f"port {cfg.port} open ({mode}); connection status unknown")
    if not peers:
        fix = "add the speaker in HA (Settings → Devices → ESPHome) with its address"
        if cfg.encryption_key:
            fix += " and the encryption key; a wrong key is logged as 'refused Home Assistant'"
        return Check("home assistant", "warn", f"port {cfg.port} open ({mode}); Home Assistant is not connected", fix)
    pipeline = f"; voice pipeline from {voice}" if voice else "; HA has not subscribed to the voice assistant"
    return Check("home assistant", "ok", f"connected from {', '.join(peers)} ({mode}){pipeline}")
