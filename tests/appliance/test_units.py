"""The shipped units pass `systemd-analyze verify` and the main unit rates ≤ 2.5 in `security`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def _copy_with_real_binary(tmp_path: Path) -> Path:
    """Copy the units, pointing ExecStart at an executable that exists, so verify checks the rest."""
    binary = tmp_path / "opt/voxhome/venv/bin/voxhome"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.glob("voxhome*.*"):
        text = unit.read_text()
        assert "ExecStart=/opt/voxhome/venv/bin/voxhome " in text or unit.suffix == ".timer"
        (out / unit.name).write_text(text.replace("/opt/voxhome/venv/bin/voxhome", str(binary)))
    return out


def test_units_verify(tmp_path: Path) -> None:
    units = _copy_with_real_binary(tmp_path)
    names = sorted(str(p) for p in units.iterdir())
    assert len(names) == 3
    done = subprocess.run([ANALYZE, "verify", *names], capture_output=True, text=True, cwd=units)
    relevant = [
        line for line in done.stderr.splitlines() if "voxhome" in line
    ]  # other units on the host may warn; ours must not
    assert done.returncode == 0 and not relevant, done.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    units = _copy_with_real_binary(tmp_path)
    broken = units / "voxhome.service"
    broken.write_text(broken.read_text().replace("Type=notify", "Type=notifyy"))
    done = subprocess.run([ANALYZE, "verify", str(broken)], capture_output=True, text=True)
    assert "voxhome.service" in done.stderr


def test_main_unit_is_notify_with_watchdog() -> None:
    text = (UNITS / "voxhome.service").read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "User=voxhome",
        "SupplementaryGroups=audio",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "DeviceAllow=char-alsa rw",
        "ReadWritePaths=/var/lib/voxhome\n",
    ):
        assert line in text, line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^LoadCredential=", text, re.M)


def _exposure(unit: Path) -> float:
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(unit)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


@pytest.mark.parametrize("unit", ["voxhome.service", "voxhome-ota.service"])
def test_security_exposure_at_most_2_5(unit: str) -> None:
    assert _exposure(UNITS / unit) <= 2.5


def test_security_score_reacts_to_hardening(tmp_path: Path) -> None:
    # Keep the check honest: the same unit without hardening must rate worse than 2.5.
    text = (UNITS / "voxhome.service").read_text()
    bare = "\n".join(
        line
        for line in text.splitlines()
        if not line.startswith(
            (
                "Protect",
                "Restrict",
                "SystemCall",
                "Capability",
                "Private",
                "NoNew",
                "Device",
                "Lock",
            )
        )
    )
    unit = tmp_path / "voxhome.service"
    unit.write_text(bare + "\n")
    assert _exposure(unit) > 2.5
