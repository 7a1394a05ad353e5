"""Start-up problems are one line — `voxhome: error [code]: what, where` — and exit 2, never a
traceback: the same checks for `run`, `listen`, `doctor` and the OTA commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def voxhome(*args: str, config: str, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.toml"
    path.write_text(config)
    return subprocess.run([sys.executable, "-m", "device", "--config", str(path), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


def assert_clean_error(out: subprocess.CompletedProcess[str], code: str, *words: str) -> None:
    assert out.returncode == 2, out.stderr[-1500:]
    assert "Traceback" not in out.stderr, out.stderr[-1500:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"voxhome: error [{code}]: "), last
    for word in words:
        assert word in last, last


@pytest.mark.parametrize(("config", "code", "words"), [
    ('[mqtt]\nhost = ""\n', "config-value", ("mqtt", "host")),
    ("[mqtt]\nkeepalive_s = -5\n", "config-value", ("keepalive_s",)),
    ('[mqtt]\ntls = true\nca_file = "/nonexistent/ca.pem"\n', "config-value", ("ca_file", "/nonexistent/ca.pem")),
    ("[home]\ndevices = " + "[" * 3000 + "]" * 3000 + "\n", "config-syntax", ("nested",)),
])
def test_bad_config_is_one_line(tmp_path: Path, config: str, code: str, words: tuple[str, ...]) -> None:
    assert_clean_error(voxhome("doctor", config=config, tmp_path=tmp_path), code, *words)


def test_an_unknown_language_stops_the_speaker_and_fails_the_doctor(tmp_path: Path) -> None:
    config = '[intent]\nlanguage = "xx"\n[mqtt]\nenabled = false\n'
    assert_clean_error(voxhome("say", "turn on the light", config=config, tmp_path=tmp_path), "intent-language", "xx")
    doctor = voxhome("doctor", config=config, tmp_path=tmp_path)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert any(line.startswith("fail  language") and "intent-language" in line for line in doctor.stdout.splitlines()), doctor.stdout


def test_unusable_state_dir_is_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    out = voxhome("ota", "provision", str(bundle), config='[device]\nstate_dir = "/proc/voxhome"\n', tmp_path=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-1500:]
    assert out.stderr.strip().splitlines()[-1].startswith("voxhome: error ["), out.stderr


def test_a_broken_vad_model_names_itself(tmp_path: Path) -> None:
    # A silero_vad package whose model is garbage, found first on the path.
    fake = tmp_path / "site" / "silero_vad"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "silero_vad.onnx").write_bytes(b"not a model")
    out = voxhome("listen", config="", tmp_path=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    assert_clean_error(out, "model-corrupt", "silero_vad.onnx")
