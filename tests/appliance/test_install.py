"""`voxhome install` into a temporary root: files, modes, idempotence, keep data on uninstall."""

from __future__ import annotations

import configparser
import re
import stat
import subprocess
import sys
from pathlib import Path

from device.settings import load_settings
from device.system.install import NO_DEPS, VENV_EXTRAS

REPO = Path(__file__).resolve().parents[2]


def _voxhome(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device", *args], capture_output=True, text=True, cwd=REPO
    )


def setup_extras() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return set(config["options.extras_require"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_reinstall_uninstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = _voxhome("install", "--destdir", str(root), "--no-venv")
    assert first.returncode == 0, first.stderr
    expected = {
        "etc/voxhome": 0o755,
        "etc/voxhome/credentials": 0o700,
        "etc/voxhome/config.toml": 0o640,
        "etc/voxhome/credentials/mqtt-password": 0o600,
        "etc/voxhome/credentials/cloud-api-key": 0o600,
        "var/lib/voxhome": 0o750,
        "var/lib/voxhome/metrics": 0o750,
        "var/lib/voxhome/ota": 0o750,
        "var/lib/voxhome/ota/slots": 0o750,
        "etc/systemd/system/voxhome.service": 0o644,
        "etc/systemd/system/voxhome-ota.service": 0o644,
        "etc/systemd/system/voxhome-ota.timer": 0o644,
    }
    for kind in ("wake", "vad", "asr", "prompts"):
        for sub in ("", "/a", "/b"):
            expected[f"var/lib/voxhome/ota/slots/{kind}{sub}"] = 0o750
    for rel, mode in expected.items():
        assert _mode(root / rel) == mode, rel
    links = {
        "etc/systemd/system/multi-user.target.wants/voxhome.service": "/etc/systemd/system/voxhome.service",
        "etc/systemd/system/timers.target.wants/voxhome-ota.timer": "/etc/systemd/system/voxhome-ota.timer",
    }
    for rel, target in links.items():
        assert (root / rel).is_symlink() and str((root / rel).readlink()) == target, rel
    installed = {str(p.relative_to(root)) for p in root.rglob("*")}
    assert installed == set(expected) | set(links) | {
        "etc",
        "etc/systemd",
        "etc/systemd/system",
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/timers.target.wants",
        "var",
        "var/lib",
    }
    unit = root / "etc/systemd/system/voxhome.service"
    assert unit.read_bytes() == (REPO / "systemd/voxhome.service").read_bytes()
    config = root / "etc/voxhome/config.toml"
    assert load_settings(config, required=True).device.state_dir == "/var/lib/voxhome"

    # Upgrade: the user's config survives, and a second run changes nothing.
    again = _voxhome("install", "--root", str(root), "--no-venv")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout
    config.write_text('[device]\nid = "kitchen"\n')
    model = root / "var/lib/voxhome/ota/slots/asr/a/model.onnx"
    model.write_bytes(b"weights")
    upgrade = _voxhome("install", "--root", str(root), "--no-venv")
    assert upgrade.returncode == 0, upgrade.stderr
    assert load_settings(config, required=True).device.id == "kitchen"
    fresh = root / "etc/voxhome/config.toml.new"
    assert fresh.read_bytes() == (REPO / "systemd/config.toml.example").read_bytes()
    assert _mode(fresh) == 0o640
    assert "nothing to do" in _voxhome("install", "--root", str(root), "--no-venv").stdout

    gone = _voxhome("install", "--destdir", str(root), "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not unit.exists() and not any((root / rel).is_symlink() for rel in links)
    assert config.exists() and model.read_bytes() == b"weights"

    purged = _voxhome("install", "--destdir", str(root), "--uninstall", "--purge")
    assert purged.returncode == 0
    assert not (root / "etc/voxhome").exists() and not (root / "var/lib/voxhome").exists()


def test_install_sh_wrapper_into_a_root(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        [str(REPO / "install.sh"), "--root", str(tmp_path), "--no-venv"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc/systemd/system/voxhome.service").read_bytes() == (
        REPO / "systemd/voxhome.service"
    ).read_bytes()
    assert _mode(tmp_path / "etc/voxhome/credentials") == 0o700


def test_board_venv_gets_the_same_silero_vad_as_the_dev_setup() -> None:
    # The VAD's ONNX file ships in silero-vad, installed without its torch dependency in both
    # places; a board without it would have no VAD at all.
    setup = (REPO / "scripts/setup.sh").read_text()
    pinned = re.findall(r"(?:silero-vad|efficientword-net)==[\d.]+", setup)
    assert pinned and set(pinned) == set(NO_DEPS)
    # The board builds its models as the service user, so the runtime needs the factory extra.
    assert VENV_EXTRAS in setup_extras()
