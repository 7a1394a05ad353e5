from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from device.__main__ import main as voxhome_main
from device.voice import factory
from device.voice.prompts import NAMES, PromptBundle, earcon, ensure_prompt_bundle
from device.voice.tts import LocalTts
from models.manifest import read_manifest, verify_bundle


def test_bundle_has_every_prompt_as_opus(prompt_bundle: Path) -> None:
    manifest = verify_bundle(prompt_bundle)
    assert manifest.kind == "prompts" and manifest.runtime == "opus"
    assert sorted(f.path for f in manifest.files) == sorted(f"{n}.opus" for n in NAMES)
    prompts = PromptBundle(prompt_bundle)
    for name in NAMES:
        audio = prompts.audio(name)
        assert len(audio) > 1600 and np.abs(audio).max() > 0.05
    # A spoken prompt is speech, not the fallback tone.
    confirm = prompts.audio("confirm")
    assert len(confirm) != len(earcon("confirm"))


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "b"
    dest.mkdir()
    for f in bundle.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def test_missing_prompt_falls_back_to_a_tone(prompt_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(prompt_bundle, tmp_path)
    (bundle / "offline.opus").unlink()
    audio = PromptBundle(bundle).audio("offline")
    assert np.array_equal(audio, earcon("offline"))
    assert np.abs(audio).max() > 0.1


def test_corrupt_prompt_falls_back_to_a_tone(prompt_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(prompt_bundle, tmp_path)
    data = bytearray((bundle / "confirm.opus").read_bytes())
    data[100] ^= 0xFF
    (bundle / "confirm.opus").write_bytes(bytes(data))
    prompts = PromptBundle(bundle)
    assert np.array_equal(prompts.audio("confirm"), earcon("confirm"))
    assert not np.array_equal(prompts.audio("ok"), earcon("ok"))  # the others still play


def test_no_bundle_or_unknown_name_gives_distinct_tones(tmp_path: Path) -> None:
    prompts = PromptBundle(tmp_path / "missing")
    a, b = prompts.audio("offline"), prompts.audio("confirm")
    assert np.abs(a).max() > 0.1 and np.abs(b).max() > 0.1
    assert not np.array_equal(a, b)
    assert np.abs(PromptBundle(None).audio("nonsense")).max() > 0.1


def test_unknown_device_speaks_the_name(prompt_bundle: Path) -> None:
    tts = LocalTts("espeak-ng")
    prompts = PromptBundle(prompt_bundle, speak=lambda text: tts.speak(text).audio)
    prefix = prompts.audio("unknown_device")
    full = prompts.unknown_device("garage heater")
    assert len(full) > len(prefix) + 8000
    assert np.array_equal(full[: len(prefix)], prefix)


def test_ensure_caches_and_rebuilds_a_damaged_bundle(tmp_path: Path) -> None:
    first = ensure_prompt_bundle(root=tmp_path)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert ensure_prompt_bundle(root=tmp_path) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp
    (first / "wake.opus").write_bytes(b"garbage")
    again = ensure_prompt_bundle(root=tmp_path)
    verify_bundle(again)
    assert read_manifest(again).name == "voxhome-prompts"


def test_factory_cli_prints_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    factory.add_arguments(parser)
    assert factory.run(parser.parse_args(["--cache-dir", str(tmp_path), "--out", str(tmp_path / "copy")])) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "prompts" and summary["files"] == len(NAMES)
    verify_bundle(tmp_path / "copy")
    # Through the real command: an existing --out is one clear error, exit status 2.
    assert voxhome_main(["models", "build", "prompts", "--cache-dir", str(tmp_path), "--out", str(tmp_path / "copy")]) == 2
