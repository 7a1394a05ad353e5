"""The top-level names are generic (`models` especially): they must resolve to this project."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["device", "models", "hal", "ota"])
def test_top_level_packages_are_ours(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "voxhome"
    assert exe.exists(), "the voxhome console script is not installed in this environment"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "listen" in out.stdout
