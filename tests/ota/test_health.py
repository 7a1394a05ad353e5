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
from models.asr.factory import ensure_asr_bundle
from models.manifest import Golden, write_manifest
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
