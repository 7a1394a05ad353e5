"""Installed bundles are verified at load: stamp on a clean start, full re-hash after an unclean
one and in `voxhome doctor`; a bad slot falls back to the other; a bundle for a newer firmware
is refused at install and at load. Real bundles, real slots, real TUF repository and HTTP server."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from device.appliance import installed_bundle
from device.errors import OtaError
from device.settings import Settings, replace_path
from device.system.doctor import check_models, find_bundles
from models.manifest import read_manifest, write_manifest
from models.vad import builtin_model_path
from ota.agent import Agent
from ota.bundle import pack
from ota.integrity import CLEAN_NAME, stamp_path, voxhome_version
from ota.publish import load_keydir
from ota.slots import SlotStore
from tests.ota.conftest import Served, Vendor, make_bundle

Device = tuple[Agent, Served, Vendor]


def flip_byte(path: Path, offset: int = 100) -> None:
    """Corrupt one byte in place, then put the mtime back (as a careless or hostile writer would)."""
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def settings_for(agent: Agent) -> Settings:
    # The device fixture keeps OTA state in <tmp>/state; the service looks in <state_dir>/ota.
    state_dir = agent.store.root.parent / "svc"
    state_dir.mkdir(exist_ok=True)
    link = state_dir / "ota"
    if not link.exists():
        link.symlink_to(agent.store.root)
    return replace_path(Settings(), "device.state_dir", str(state_dir))


def two_good_slots(device: Device) -> Agent:
    """1.0.0 in slot a, 1.1.0 installed by the agent into slot b, proven and marked good."""
    agent, _served, vendor = device
    vendor.publish("1.1.0")
    assert [r["state"] for r in agent.apply()] == ["pending"]
    assert agent.confirm("vad")["state"] == "success"
    state = agent.store.load().kind("vad")
    assert (state.active, state.version, state.trial) == ("b", "1.1.0", None)
    return agent


def publish_needing(vendor: Vendor, version: str, min_voxhome: str) -> None:
    directory = make_bundle(vendor.base / "bundles", version)
    manifest = read_manifest(directory)
    write_manifest(directory, name=manifest.name, kind="vad", version=version, min_voxhome=min_voxhome,
                   golden=manifest.golden)
    archive = vendor.base / "bundles" / f"vad-{version}.tar"
    pack(directory, archive)
    vendor.repo.add_bundles([archive], load_keydir(vendor.keydir))


def test_stamp_is_trusted_until_a_file_changes(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "ota")
    store.provision("vad", make_bundle(tmp_path / "factory", "1.0.0"))
    slot = store.slot_dir("vad", "a")
    assert not stamp_path(slot).exists()
    assert store.open_verified("vad").method == "full"  # no stamp yet: every byte hashed
    assert stamp_path(slot).exists()
    assert store.open_verified("vad").method == "stamp"  # fingerprints unchanged: nothing re-hashed
    assert store.open_verified("vad", full=True).method == "full"  # doctor / unclean start
    assert store.open_verified("vad").method == "stamp"
    # Same bytes rewritten: a new ctime voids the stamp, the full check passes and re-stamps.
    model = slot / "model-0.bin"
    model.write_bytes(model.read_bytes())
    assert store.open_verified("vad").method == "full"
    assert store.open_verified("vad").method == "stamp"


def test_flipped_byte_falls_back_to_the_other_slot(device: Device, caplog: pytest.LogCaptureFixture) -> None:
    agent = two_good_slots(device)
    store = agent.store
    assert store.open_verified("vad").method == "stamp"  # the agent's confirm re-hashed and stamped it
    flip_byte(store.slot_dir("vad", "b") / "model-1.bin")  # same size, same mtime
    with caplog.at_level(logging.ERROR, logger="ota.slots"):
        verified = store.open_verified("vad")
    assert verified.path == store.slot_dir("vad", "a") and verified.manifest.version == "1.0.0"
    assert verified.method == "full"  # the fallback slot is always re-hashed
    assert "model-corrupt" in verified.fallback_reason and "model-1.bin" in verified.fallback_reason
    lines = [r.getMessage() for r in caplog.records]
    assert any("failed verification" in line and "model-1.bin" in line and "sha256" in line for line in lines), lines
    assert any("fell back from slot b (1.1.0) to slot a (1.0.0)" in line for line in lines), lines
    # The fallback is durable (the next start loads slot a directly) and not held against 1.1.0 …
    state = store.load().kind("vad")
    assert (state.active, state.version, state.floor, state.rejected) == ("a", "1.0.0", "1.1.0", ())
    assert store.open_verified("vad").fallback_reason == ""
    # … so the agent reinstalls the same version over the damaged slot.
    assert [d.action for d in agent.check()] == ["update"]
    assert [r["state"] for r in agent.apply()] == ["pending"]
    assert store.open_verified("vad").path == store.slot_dir("vad", "b")


def test_both_slots_bad_is_one_clear_error(device: Device, caplog: pytest.LogCaptureFixture) -> None:
    agent = two_good_slots(device)
    store = agent.store
    flip_byte(store.slot_dir("vad", "b") / "model-0.bin")
    (store.slot_dir("vad", "a") / "model-2.bin").write_bytes(b"short")
    with pytest.raises(OtaError) as err:
        store.open_verified("vad")
    assert err.value.code == "ota-no-good-slot"
    message = err.value.message
    assert "slot b: [model-corrupt]" in message and "model-0.bin" in message
    assert "slot a: [model-corrupt]" in message and "model-2.bin is 5 bytes" in message
    assert store.load().kind("vad").active == "b"  # nothing switched to a bad slot
    # The service logs the code and carries on with its built-in model: no traceback.
    with caplog.at_level(logging.ERROR, logger="device.appliance"):
        assert installed_bundle(settings_for(agent), "vad") is None
    errors = [r for r in caplog.records if r.name == "device.appliance"]
    assert len(errors) == 1 and "[ota-no-good-slot]" in errors[0].getMessage() and errors[0].exc_info is None


def test_a_half_installed_newer_slot_is_not_a_fallback(device: Device) -> None:
    agent, _served, _vendor = device
    store = agent.store
    # An install the agent unpacked but has not switched to (health check still running).
    newer = make_bundle(store.root.parent / "src", "2.0.0")
    slot_b = store.slot_dir("vad", "b")
    slot_b.mkdir(parents=True)
    for f in newer.iterdir():
        (slot_b / f.name).write_bytes(f.read_bytes())
    flip_byte(store.slot_dir("vad", "a") / "model-0.bin")
    with pytest.raises(OtaError) as err:
        store.open_verified("vad")
    assert err.value.code == "ota-no-good-slot" and "[ota-unproven]" in err.value.message


def test_unclean_shutdown_forces_a_full_rehash(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "ota")
    store.provision("vad", make_bundle(tmp_path / "factory", "1.0.0"))
    assert store.begin_run() is False  # first start: no marker
    assert store.open_verified("vad").method == "full"
    store.mark_clean_stop()
    assert (store.root / CLEAN_NAME).exists()
    assert store.begin_run() is True  # orderly stop before: the stamp is trusted
    assert not (store.root / CLEAN_NAME).exists()  # consumed, so a crash of this run is seen
    assert store.open_verified("vad").method == "stamp"
    # This run "crashes" (no mark_clean_stop): the next start drops the stamps and re-hashes.
    assert store.begin_run() is False
    assert not stamp_path(store.slot_dir("vad", "a")).exists()
    assert store.open_verified("vad").method == "full"
    assert store.open_verified("vad").method == "stamp"


def test_nothing_installed_needs_no_marker(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "ota")
    assert store.begin_run() is True
    store.mark_clean_stop()
    assert not (tmp_path / "ota").exists()


def test_newer_firmware_bundle_is_refused_at_provision(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "factory", "1.0.0")
    write_manifest(bundle, name="test-vad", kind="vad", version="1.0.0", min_voxhome="99.0.0")
    store = SlotStore(tmp_path / "ota")
    with pytest.raises(OtaError) as err:
        store.provision("vad", bundle)
    assert err.value.code == "ota-incompatible"
    assert "needs voxhome 99.0.0 or newer" in err.value.message and voxhome_version() in err.value.message
    assert store.load().kinds == {} and not store.slot_dir("vad", "a").exists()


def test_newer_firmware_bundle_is_refused_at_install(device: Device) -> None:
    agent, _served, vendor = device
    publish_needing(vendor, "1.1.0", "99.0.0")
    results = agent.apply()
    assert [r["state"] for r in results] == ["failure"] and results[0]["code"] == "ota-incompatible"
    assert "99.0.0" in str(results[0]["message"])
    assert agent.store.load().kind("vad").version == "1.0.0"
    assert not agent.store.slot_dir("vad", "b").exists()


def test_newer_firmware_bundle_is_refused_at_load(device: Device, caplog: pytest.LogCaptureFixture) -> None:
    # Installed by a newer firmware (0.3.0) that was then downgraded to this one.
    agent, _served, vendor = device
    newer_firmware = Agent(dataclasses.replace(agent.config, voxhome_version="0.3.0"))
    publish_needing(vendor, "1.1.0", "0.3.0")
    assert [r["state"] for r in newer_firmware.apply()] == ["pending"]
    assert newer_firmware.confirm("vad")["state"] == "success"
    store = agent.store
    assert store.open_verified("vad", firmware="0.3.0").method == "stamp"  # a valid stamp (from confirm) …
    with caplog.at_level(logging.ERROR, logger="ota.slots"):
        path = installed_bundle(settings_for(agent), "vad")  # … and this firmware is 0.1.0
    assert path is not None and path.resolve() == store.slot_dir("vad", "a").resolve()
    lines = " ".join(r.getMessage() for r in caplog.records)
    assert "[ota-incompatible]" in lines and "needs voxhome 0.3.0 or newer" in lines
    assert store.load().kind("vad").version == "1.0.0"


def rot_silently(slot: Path, name: str) -> None:
    """Media corruption: the bytes change, the metadata the stamp records does not. A test can only
    get there by flipping the byte and then bringing the stamp's fingerprint up to date."""
    flip_byte(slot / name)
    stamp = json.loads(stamp_path(slot).read_text())
    st = (slot / name).stat()
    stamp["files"][name] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    stamp_path(slot).write_text(json.dumps(stamp, sort_keys=True))


def test_stamp_path_reads_no_bytes_and_doctor_rehashes_them(device: Device) -> None:
    agent = two_good_slots(device)
    store = agent.store
    settings = settings_for(agent)
    assert store.open_verified("vad").method == "stamp"
    checks = check_models(find_bundles(settings))
    assert [c.status for c in checks if c.name.startswith("model test-vad")] == ["ok", "ok"]
    slot_b = store.slot_dir("vad", "b")
    rot_silently(slot_b, "model-2.bin")
    # The start-up check trusts the stamp and never reads the file: the rot goes unseen there …
    assert store.open_verified("vad").method == "stamp"
    # … the doctor re-hashes every byte and reports it …
    checks = check_models(find_bundles(settings))
    failed = [c for c in checks if c.status == "fail"]
    assert len(failed) == 1 and failed[0].name == "model vad/b"
    assert "model-corrupt" in failed[0].detail and "model-2.bin" in failed[0].detail
    # … and drops the stamp, so the next start re-hashes too and falls back to slot a.
    assert not stamp_path(slot_b).exists()
    assert store.open_verified("vad").path == store.slot_dir("vad", "a")


def test_unclean_shutdown_catches_what_the_stamp_cannot(tmp_path: Path) -> None:
    store = SlotStore(tmp_path / "ota")
    store.provision("vad", make_bundle(tmp_path / "factory", "1.0.0"))
    store.begin_run()
    store.open_verified("vad")
    rot_silently(store.slot_dir("vad", "a"), "model-0.bin")
    store.mark_clean_stop()
    store.begin_run()
    assert store.open_verified("vad").method == "stamp"  # clean stop: trusted
    assert store.begin_run() is False  # the last run never stopped in order
    with pytest.raises(OtaError) as err:
        store.open_verified("vad")
    assert err.value.code == "ota-no-good-slot" and "model-0.bin" in err.value.message


def test_service_start_uses_the_stamp_after_a_clean_stop_and_rehashes_after_a_kill(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "vad-src"
    src.mkdir()
    shutil.copy(builtin_model_path(), src / "silero_vad.onnx")
    write_manifest(src, name="silero", kind="vad", version="6.2.0")
    store = SlotStore(tmp_path / "state" / "ota")
    store.provision("vad", src)
    quiet = tmp_path / "quiet.wav"
    soundfile.write(str(quiet), np.zeros(16000 * 30, dtype=np.int16), 16000)
    config = tmp_path / "config.toml"
    config.write_text(f"[device]\nstate_dir = '{tmp_path / 'state'}'\n[mqtt]\nenabled = false\n"
                      "[cloud]\nenabled = false\n[audio.speaker]\nbackend = 'null'\n")
    command = [sys.executable, "-m", "device", "-v", "--config", str(config), "run", "--audio", str(quiet)]

    def run() -> str:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
        return done.stderr

    assert "vad model 6.2.0 from slot a (full check)" in run()  # first start: nothing stamped yet
    assert (store.root / CLEAN_NAME).exists()
    assert "vad model 6.2.0 from slot a (stamp check)" in run()  # orderly stop before
    # Killed mid-run (a power cut, as far as the next start can tell): no marker is left behind.
    proc = subprocess.Popen([*command, "--realtime"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while "(stamp check)" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.kill()
    proc.wait()
    proc.stderr.close()
    assert "(stamp check)" in seen and not (store.root / CLEAN_NAME).exists()
    logs = run()
    assert "the last run did not stop cleanly" in logs and "vad model 6.2.0 from slot a (full check)" in logs


def test_install_and_full_verification_stream_in_bounded_memory(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    block = np.random.default_rng(1).bytes(1 << 20)
    with (src / "weights.bin").open("wb") as fh:
        for _ in range(48):
            fh.write(block)
    write_manifest(src, name="big", kind="asr", version="1.0.0")
    store = SlotStore(tmp_path / "ota")
    tracemalloc.start()
    try:
        store.provision("asr", src)  # copied piece by piece
        assert store.open_verified("asr", full=True).method == "full"  # hashed piece by piece
        assert store.load_active("asr")[1].version == "1.0.0"
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB for a 48 MiB bundle"
