"""The wake health check runs the real wake runner on the bundle's golden audio, in a child process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from device.bench.speech import concat, silence, synthesize
from device.errors import OtaError
from device.voice.prompts import ensure_prompt_bundle
from hal.opus import write_ogg_opus
from models.asr.factory import ensure_asr_bundle
from models.manifest import Golden, write_manifest
from models.vad import builtin_model_path
from models.wake import micro_models_dir
from ota.bundle import pack
from ota.health import run_health_check
from ota.publish import load_keydir
from ota.slots import parse_version
from tests.ota.conftest import Serve, Vendor, make_bundle, new_agent


@pytest.fixture(scope="module")
def okay_nabu_audio() -> np.ndarray:
    return concat(silence(0.5), synthesize("okay nabu"), silence(0.5))


def wake_bundle(base: Path, version: str, positive: np.ndarray) -> Path:
    directory = base / f"wake-{version}"
    directory.mkdir(parents=True)
    for name in ("okay_nabu.json", "okay_nabu.tflite"):
        shutil.copy(micro_models_dir() / name, directory / name)
    soundfile.write(str(directory / "positive.wav"), positive, 16000)
    soundfile.write(str(directory / "negative.wav"), concat(silence(0.3), synthesize("turn on the light")), 16000)
    write_manifest(directory, name="okay-nabu", kind="wake", version=version, runtime="tflite",
                   golden=(Golden("positive.wav", "okay_nabu"), Golden("negative.wav", "")))
    return directory


def test_wake_bundle_passes_on_its_golden_audio(tmp_path: Path, okay_nabu_audio: np.ndarray) -> None:
    summary = run_health_check("wake", wake_bundle(tmp_path, "2.0.0", okay_nabu_audio), timeout_s=120)
    assert summary == "wake 2.0.0: 2 golden clip(s) as expected"


def test_wake_model_that_does_not_fire_is_never_switched_to(tmp_path: Path, vendor: Vendor, serve: Serve,
                                                             okay_nabu_audio: np.ndarray) -> None:
    served = serve(vendor.repo.path)
    agent = new_agent(tmp_path / "state", served.url, vendor.root, kinds=("wake",))
    agent.store.provision("wake", wake_bundle(tmp_path / "factory", "1.0.0", okay_nabu_audio))
    # A "new" model whose positive clip is silence: it loads fine but can't pass its golden case.
    deaf = wake_bundle(tmp_path / "bad", "1.1.0", silence(1.5))
    archive = tmp_path / "deaf.tar"
    pack(deaf, archive)
    vendor.repo.add_bundles([archive], load_keydir(vendor.keydir))
    results = agent.apply()
    assert [r["state"] for r in results] == ["failure"] and results[0]["code"] == "ota-health"
    assert "expected 'okay_nabu', heard nothing" in str(results[0]["message"])
    assert agent.store.load_active("wake")[1].version == "1.0.0"


def test_generic_checker_rejects_a_model_that_does_not_load(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, "1.0.0", extra={"model.tflite": b"\x00" * 64})
    with pytest.raises(OtaError) as err:
        run_health_check("vad", bundle, timeout_s=60)
    assert err.value.code == "ota-health" and "model.tflite" in err.value.message


def test_asr_bundle_must_transcribe_its_golden_sentence(tmp_path: Path) -> None:
    # The factory builds the bundle on first use (cached), so this runs on a cold cache too.
    source = ensure_asr_bundle()
    good = tmp_path / "good"
    shutil.copytree(source, good)
    assert "transcribed as expected" in run_health_check("asr", good, timeout_s=300)
    # Same model, but the golden case now expects another sentence: the check must fail.
    manifest = json.loads((good / "manifest.json").read_text())
    manifest["golden"][0]["expected"] = "open the garage door"
    (good / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OtaError) as err:
        run_health_check("asr", good, timeout_s=300)
    assert "expected 'open the garage door'" in err.value.message


def test_versions_compare_numerically_and_ignore_build_metadata() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.3")
    assert parse_version("1.0.0+9471d942") == (1, 0, 0)
    with pytest.raises(OtaError):
        parse_version("1.0-beta")


def test_prompt_bundle_must_decode_every_prompt(tmp_path: Path) -> None:
    good = tmp_path / "good"
    shutil.copytree(ensure_prompt_bundle(), good)
    assert "prompts decode" in run_health_check("prompts", good, timeout_s=60)

    # A prompt that is valid Ogg Opus but silent, re-signed into the manifest: refused by name.
    silent = tmp_path / "silent"
    shutil.copytree(good, silent)
    write_ogg_opus(silent / "confirm.opus", np.zeros(16000, dtype=np.float32))
    manifest = json.loads((silent / "manifest.json").read_text())
    write_manifest(silent, name=manifest["name"], kind="prompts", version="2", metadata=manifest["metadata"])
    with pytest.raises(OtaError) as err:
        run_health_check("prompts", silent, timeout_s=60)
    assert "confirm.opus" in err.value.message

    # Garbage in place of a prompt, manifest updated to match: the decoder's error names it.
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "offline.opus").write_bytes(b"OggS" + bytes(200))
    write_manifest(broken, name=manifest["name"], kind="prompts", version="2", metadata=manifest["metadata"])
    with pytest.raises(OtaError) as err:
        run_health_check("prompts", broken, timeout_s=60)
    assert "offline.opus" in err.value.message

    # A bundle without one of the prompts the device says.
    (broken / "offline.opus").unlink()
    write_manifest(broken, name=manifest["name"], kind="prompts", version="2", metadata=manifest["metadata"])
    with pytest.raises(OtaError, match="lacks offline"):
        run_health_check("prompts", broken, timeout_s=60)


def _vad_bundle(base: Path, model: Path, speech: np.ndarray) -> Path:
    bundle = base / "vad"
    bundle.mkdir()
    shutil.copy(model, bundle / "silero_vad.onnx")
    soundfile.write(str(bundle / "speech.wav"), speech, 16000)
    soundfile.write(str(bundle / "room.wav"), np.random.default_rng(1).normal(0, 0.002, 32000), 16000)
    write_manifest(bundle, name="silero", kind="vad", version="6.2.3",
                   golden=(Golden("speech.wav", "speech"), Golden("room.wav", "silence")))
    return bundle


def test_vad_bundle_must_hear_its_speech_and_not_its_silence(tmp_path: Path) -> None:
    speech = concat(silence(0.3), synthesize("turn on the kitchen light"), silence(0.3))
    good = _vad_bundle(tmp_path, builtin_model_path(), speech)
    assert "2 golden clip(s) as expected" in run_health_check("vad", good, timeout_s=60)

    # The same model, but its "speech" clip is silence: the model can't prove itself → refused.
    soundfile.write(str(good / "speech.wav"), np.zeros(16000), 16000)
    write_manifest(good, name="silero", kind="vad", version="6.2.4",
                   golden=(Golden("speech.wav", "speech"), Golden("room.wav", "silence")))
    with pytest.raises(OtaError, match="speech.wav: expected speech, heard silence"):
        run_health_check("vad", good, timeout_s=60)

    # A model bundle without the two golden cases can't prove anything.
    write_manifest(good, name="silero", kind="vad", version="6.2.5", golden=(Golden("speech.wav", "hello"),))
    with pytest.raises(OtaError, match="'speech' and 'silence'"):
        run_health_check("vad", good, timeout_s=60)
