"""The model factory's bundle and cache, and `voxhome transcribe` / `voxhome models build asr`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from device.__main__ import main
from device.errors import ModelError
from device.intent.policy import MAX_GAP
from models.asr.factory import BUILDER_VERSION, build_key, ensure_asr_bundle
from models.asr.sources import packaged_source
from models.manifest import verify_bundle


def test_bundle_verifies_and_describes_itself(asr_bundle: Path) -> None:
    manifest = verify_bundle(asr_bundle, hashes=True)
    assert manifest.kind == "asr" and manifest.name == "whisper-tiny-en"
    paths = {f.path for f in manifest.files}
    assert {"encoder.onnx", "decoder.onnx", "head.onnx", "tokenizer.npz", "embed_codes.npy", "config.json"} <= paths
    assert manifest.golden[0].audio in paths and manifest.golden[0].expected == "turn on the kitchen light"
    assert manifest.metadata["builder_version"] == BUILDER_VERSION
    # int8: the three graphs together are well under half the float16 source's 75 MB of weights.
    assert sum(f.size for f in manifest.files if f.path.endswith(".onnx")) < 45_000_000


def test_cache_is_reused_and_keyed_by_inputs(asr_bundle: Path) -> None:
    assert ensure_asr_bundle() == asr_bundle
    tiny = packaged_source("tiny.en")
    assert build_key(tiny, 2.0, True) != build_key(tiny, 4.0, True) != build_key(tiny, 4.0, False)


def test_corrupt_source_model_names_the_file(ct2_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(ct2_dir / name, source / name)
    with (ct2_dir / "model.bin").open("rb") as fh:
        (source / "model.bin").write_bytes(fh.read(1_000_000))
    with pytest.raises(ModelError) as err:
        ensure_asr_bundle(source, root=tmp_path / "cache")
    assert str(source / "model.bin") in err.value.message
    # A failed build leaves nothing behind that could pass for a bundle.
    assert not list((tmp_path / "cache").glob("asr-*"))
    with pytest.raises(ModelError, match="does not exist"):
        ensure_asr_bundle(tmp_path / "nowhere", root=tmp_path / "cache")


def test_models_build_asr_command(asr_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "build", "asr"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["bundle"] == str(asr_bundle) and line["files"] >= 8


def test_transcribe_command(asr_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    golden = asr_bundle / "golden" / "turn_on_the_kitchen_light.wav"
    lock = tmp_path / "lock.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(lock), "lock the front door"], check=True, timeout=30)
    question = tmp_path / "question.wav"
    subprocess.run(["espeak-ng", "-v", "en-gb", "-w", str(question), "what is the capital of france"], check=True, timeout=30)
    proc = subprocess.run(
        [sys.executable, "-m", "device", "transcribe", str(golden), str(bad), str(lock), str(question),
         "--bundle", str(asr_bundle), "--demo-home"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr  # one file failed, the others were still transcribed
    first, second, third, fourth = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert first["transcript"].lower().startswith("turn on the kitchen light")
    assert first["duration_s"] == pytest.approx(1.5, abs=0.2) and 0 < first["time_s"] < 30
    # The demo home's grammar hears the same sentence, and the audio supports it (the policy's bound).
    assert first["command"] == "turn on the kitchen light" and first["gap"] <= MAX_GAP
    assert second["file"] == str(bad) and second["error"]["code"] == "audio-unsupported"
    # Whatever the free transcript made of it, the audio supports the lock command (the policy's bound).
    assert third["command"] == "lock the front door" and third["gap"] <= MAX_GAP
    # A question the home can't answer still gets *some* home sentence, but one the audio doesn't support.
    assert fourth["transcript"].lower().startswith("what is the capital of france") and fourth["gap"] > MAX_GAP


def test_transcribe_names_a_bad_home_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home.json"
    home.write_text('{"configs": [{"payload": {}}]}', encoding="utf-8")
    assert main(["transcribe", "x.wav", "--home", str(home)]) == 2
    assert str(home) in capsys.readouterr().err
    home.write_text('{"configs": []}', encoding="utf-8")
    assert main(["transcribe", "x.wav", "--home", str(home)]) == 2
    assert "no entity" in capsys.readouterr().err


def test_transcribe_rejects_a_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcribe", "x.wav", "--bundle", str(tmp_path)]) == 2
    assert "not a model bundle" in capsys.readouterr().err
