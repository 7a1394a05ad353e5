"""Install voxhome as an appliance into a root (/ on the board, a temp dir in tests).

Idempotent: every step checks before it acts. The config is created from the commented template
once and never overwritten; uninstall keeps /etc/voxhome and /var/lib/voxhome unless purging.
System-level steps (apt, useradd, chown, systemctl) run only when root is "/" and are skippable.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from device.errors import VoxError

_LOG = logging.getLogger(__name__)
SOURCE = Path(__file__).resolve().parents[2]
UNITS = ("voxhome.service", "voxhome-ota.service", "voxhome-ota.timer")
CREDENTIALS = ("mqtt-password", "cloud-api-key")  # the LoadCredential= names in voxhome.service
APT_PACKAGES = (
    "python3-venv", "python3-dev", "gcc",  # pyalsaaudio has no wheels for ARM: it compiles
    "libasound2-dev", "alsa-utils", "libopus0", "libspeexdsp1", "espeak-ng",
)
NO_DEPS = ("silero-vad==6.2.3", "efficientword-net==1.0.5")
"""Installed without dependencies: silero-vad's wheel declares torch, which we never import (we
only load its ONNX file); efficientword-net's declares pyaudio, twine, typer and more, of which wake
phrases (models/wake_phrase.py) use only its ONNX file and log-fbank code. scripts/setup.sh pins
the same versions (a test keeps them equal)."""
VENV_EXTRAS = "build"
"""The model factory's few packages: the board builds its speech model and prompts once at
install time (into the state dir's cache) unless OTA has already delivered them."""
KINDS = ("wake", "vad", "asr", "prompts")
# The OTA agent's layout: <state_dir>/ota/slots/<kind>/<a|b> (ota/slots.py SlotStore).
STATE_SUBDIRS = ("ota", "ota/slots", *(f"ota/slots/{k}" for k in KINDS),
                 *(f"ota/slots/{k}/{s}" for k in KINDS for s in "ab"), "metrics")
ENABLE = {"voxhome.service": "multi-user.target.wants", "voxhome-ota.timer": "timers.target.wants"}


class InstallError(VoxError):
    def __init__(self, message: str) -> None:
        super().__init__("install-failed", message)


@dataclass(frozen=True)
class InstallPlan:
    root: Path = Path("/")
    system: bool = True  # apt, user, chown, systemctl: only on a real board
    venv: bool = True

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


def _run(cmd: list[str]) -> None:
    _LOG.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise InstallError(f"{cmd[0]} failed: {done.stderr.strip()[:300]}")


def install(plan: InstallPlan) -> list[str]:
    """Install or upgrade; returns what changed, one line each (empty on a no-op re-run)."""
    changed: list[str] = []
    if plan.system:
        _run(["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES])
        if subprocess.run(["id", "-u", "voxhome"], capture_output=True).returncode != 0:
            _run(
                [
                    "useradd",
                    "--system",
                    "--home-dir",
                    "/var/lib/voxhome",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--groups",
                    "audio",
                    "voxhome",
                ]
            )
            changed.append("user voxhome")
    if not (SOURCE / "systemd/voxhome.service").exists():
        raise InstallError(f"no systemd/ beside {SOURCE}: run ./install.sh from a source checkout")
    venv = plan.path("/opt/voxhome/venv")
    if plan.venv:
        if not (venv / "bin/python").exists():
            _run([sys.executable, "-m", "venv", str(venv)])
            changed.append(str(venv))
        # Every run, so an upgrade from a newer checkout reaches the venv (pip skips what's current).
        _run([str(venv / "bin/pip"), "install", "--quiet", "--upgrade", f"{SOURCE}[{VENV_EXTRAS}]"])
        _run([str(venv / "bin/pip"), "install", "--quiet", "--no-deps", *NO_DEPS])
    etc = plan.path("/etc/voxhome")
    for directory, mode in ((etc, 0o755), (etc / "credentials", 0o700)):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(mode)
    for name in CREDENTIALS:
        # LoadCredential= fails the unit when its file is missing: an empty one means "not set".
        secret = etc / "credentials" / name
        if not secret.exists():
            secret.touch(0o600)
            changed.append(str(secret))
        secret.chmod(0o600)
    config = etc / "config.toml"
    template = (SOURCE / "systemd/config.toml.example").read_bytes()
    if not config.exists():
        config.write_bytes(template)
        changed.append(str(config))
    elif config.read_bytes() != template:
        # Never overwrite the user's config: leave the new template beside it to compare.
        fresh = etc / "config.toml.new"
        if not fresh.exists() or fresh.read_bytes() != template:
            fresh.write_bytes(template)
            fresh.chmod(0o640)
            changed.append(str(fresh))
    config.chmod(0o640)
    state = plan.path("/var/lib/voxhome")
    for sub in STATE_SUBDIRS:
        (state / sub).mkdir(parents=True, exist_ok=True)
    for directory in [state, *(state / s for s in STATE_SUBDIRS)]:
        directory.chmod(0o750)
    unit_dir = plan.path("/etc/systemd/system")
    unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in UNITS:
        target = unit_dir / unit
        text = (SOURCE / "systemd" / unit).read_bytes()
        if not target.exists() or target.read_bytes() != text:
            target.write_bytes(text)
            changed.append(str(target))
        target.chmod(0o644)
    if plan.root != Path("/"):
        # What `systemctl enable` would do, done by hand for an image being prepared offline.
        for unit, wants in ENABLE.items():
            link = unit_dir / wants / unit
            link.parent.mkdir(exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(f"/etc/systemd/system/{unit}")
                changed.append(f"enabled {unit}")
    if plan.system:
        _run(["chown", "-R", "voxhome:voxhome", str(state)])
        _run(["chown", "root:voxhome", str(config)])
        if plan.venv:
            # Build the speech model and prompts now, as the service's user into the cache the
            # unit uses (XDG_CACHE_HOME in voxhome.service): the first start then only loads them.
            for kind in ("asr", "prompts"):
                _run(["runuser", "-u", "voxhome", "--", "env", "XDG_CACHE_HOME=/var/lib/voxhome/cache",
                      str(venv / "bin/voxhome"), "models", "build", kind])
        _run(["systemctl", "daemon-reload"])
        _run(["systemctl", "enable", "voxhome.service", "voxhome-ota.timer"])
    return changed


def uninstall(plan: InstallPlan, *, purge: bool = False) -> list[str]:
    """Remove units and the venv; config and model/state data stay unless `purge`."""
    removed: list[str] = []
    if plan.system:
        subprocess.run(
            ["systemctl", "disable", "--now", "voxhome.service", "voxhome-ota.timer"],
            capture_output=True,
        )
    for unit, wants in ENABLE.items():
        link = plan.path("/etc/systemd/system") / wants / unit
        if link.is_symlink():
            link.unlink()
            removed.append(f"disabled {unit}")
    for unit in UNITS:
        target = plan.path("/etc/systemd/system") / unit
        if target.exists():
            target.unlink()
            removed.append(str(target))
    paths = ["/opt/voxhome"] + (["/etc/voxhome", "/var/lib/voxhome"] if purge else [])
    for absolute in paths:
        target = plan.path(absolute)
        if target.exists():
            shutil.rmtree(target)
            removed.append(str(target))
    if plan.system:
        if purge:
            subprocess.run(["userdel", "voxhome"], capture_output=True)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)
    return removed
