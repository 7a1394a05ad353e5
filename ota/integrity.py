"""Integrity of installed bundles at load: a cheap stamp check on every start, a full re-hash when it matters.

A full verification streams every file of a slot through SHA-256 (bounded memory, `sha256_file`)
against its manifest. Re-hashing a few hundred MiB of weights on each start would cost a Pi
seconds, so a successful full verification writes a *stamp* beside the slot
(`slots/<kind>/<slot>.verified.json`): the manifest's digest and, per file, size, mtime, ctime,
inode and device. Any write to a file changes its ctime (which no user call can set back), a
reinstall changes its inode, so while every fingerprint still matches the bytes are the ones that
were hashed — except for silent media corruption, which no metadata shows. That is why the full
re-hash also runs in `voxhome doctor` and after an unclean shutdown: the service writes a
`clean-stop` marker when it stops in order and removes it when it starts; a start without the
marker (power cut, crash, kill) drops every stamp first.

Every load also checks the manifest's `min_voxhome` against this firmware's version: a bundle
built for a newer voxhome is refused at install and at load, stamp or not.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.errors import ModelError, OtaError
from models.manifest import MANIFEST_NAME, BundleManifest, read_manifest, sha256_file, verify_bundle
from ota.atomic import FileSystem, write_atomic

_LOG = logging.getLogger(__name__)
STAMP_SUFFIX = ".verified.json"
CLEAN_NAME = "clean-stop"
_STAMP_FORMAT = 1


def parse_version(text: str) -> tuple[int, ...]:
    """'1.10.2' → (1, 10, 2); '+build' metadata is ignored (semver); anything else is a clear error."""
    try:
        parts = tuple(int(p) for p in text.partition("+")[0].split("."))
    except ValueError:
        parts = ()
    if not parts or any(p < 0 for p in parts):
        raise OtaError("ota-bad-version", f"version {text!r} is not dotted numbers like 1.2.0")
    return parts


def voxhome_version() -> str:
    """The firmware version: the installed voxhome distribution's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voxhome")
    except PackageNotFoundError:
        return "0.1.0"


def check_firmware(manifest: BundleManifest, firmware: str) -> None:
    """Refuse a bundle whose manifest needs a newer voxhome than `firmware`."""
    if parse_version(manifest.min_voxhome) > parse_version(firmware):
        raise OtaError("ota-incompatible", f"{manifest.kind} bundle {manifest.name} {manifest.version} needs "
                       f"voxhome {manifest.min_voxhome} or newer, this firmware is {firmware}")


@dataclass(frozen=True, slots=True)
class Verified:
    path: Path
    manifest: BundleManifest
    method: str
    """'stamp' (fingerprints matched the last full verification) or 'full' (every byte re-hashed)."""
    fallback_reason: str = ""
    """Why the active slot was not used (empty when it was)."""


def stamp_path(slot_dir: Path) -> Path:
    return slot_dir.with_name(slot_dir.name + STAMP_SUFFIX)


def _fingerprints(slot_dir: Path, manifest: BundleManifest) -> dict[str, list[int]] | None:
    out: dict[str, list[int]] = {}
    for rel in (MANIFEST_NAME, *(f.path for f in manifest.files)):
        try:
            st = os.stat(slot_dir / rel)
        except OSError:
            return None
        out[rel] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    return out


def _stamp_body(slot_dir: Path, manifest: BundleManifest) -> dict[str, Any] | None:
    prints = _fingerprints(slot_dir, manifest)
    if prints is None:
        return None
    return {"format": _STAMP_FORMAT, "manifest_sha256": sha256_file(slot_dir / MANIFEST_NAME), "files": prints}


def stamp_matches(slot_dir: Path, manifest: BundleManifest) -> bool:
    """True when the stamp exists and every fingerprint (and the manifest's digest) is unchanged."""
    try:
        stamp = json.loads(stamp_path(slot_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp == _stamp_body(slot_dir, manifest)


def forget_stamp(fs: FileSystem, slot_dir: Path) -> None:
    """Drop a slot's stamp (before it is rewritten, or when a full check failed)."""
    path = stamp_path(slot_dir)
    try:
        fs.unlink(path)
    except FileNotFoundError:
        return
    except OSError as err:
        _LOG.warning("can't remove stamp %s: %s", path, err.strerror)
        return
    fs.fsync_dir(path.parent)


def verify_slot(fs: FileSystem, slot_dir: Path, *, kind: str, firmware: str, full: bool = False) -> Verified:
    """Verify one slot: stamp when allowed and valid, else a full streamed re-hash (then stamp it).

    Raises ModelError (missing, short or altered file; bad manifest) or OtaError (wrong kind,
    newer firmware needed), each naming the slot and the reason.
    """
    manifest = read_manifest(slot_dir)
    if manifest.kind != kind:
        raise OtaError("ota-active-corrupt", f"slot {slot_dir} holds a {manifest.kind} bundle, not {kind}")
    check_firmware(manifest, firmware)
    if not full and stamp_matches(slot_dir, manifest):
        return Verified(slot_dir, manifest, "stamp")
    forget_stamp(fs, slot_dir)
    before = _stamp_body(slot_dir, manifest)
    manifest = verify_bundle(slot_dir, hashes=True)
    # Only stamp what stayed put while it was hashed (a file rewritten meanwhile gets hashed next time).
    if before is not None and before == _stamp_body(slot_dir, manifest):
        try:
            write_atomic(fs, stamp_path(slot_dir), json.dumps(before, sort_keys=True).encode())
        except OtaError as err:  # a read-only or full disk costs a re-hash next start, nothing more
            _LOG.warning("can't write stamp for %s: %s", slot_dir, err.message)
    return Verified(slot_dir, manifest, "full")


def begin_run(fs: FileSystem, root: Path) -> bool:
    """At service start: True if the last run stopped cleanly; otherwise drop every stamp so each
    installed bundle is re-hashed in full as it loads. Consumes the marker (durably), so a crash
    of this run is seen by the next one."""
    slots = root / "slots"
    if not slots.is_dir():
        return True  # nothing installed by OTA: nothing to verify
    marker = root / CLEAN_NAME
    try:
        if marker.exists():
            fs.unlink(marker)
            fs.fsync_dir(root)
            return True
        stamps = sorted(slots.glob("*/*" + STAMP_SUFFIX))
        for stamp in stamps:
            fs.unlink(stamp)
        for directory in sorted({s.parent for s in stamps}):
            fs.fsync_dir(directory)
    except OSError as err:
        _LOG.warning("can't update the OTA state in %s: %s", root, err.strerror)
        return False
    if stamps:
        _LOG.warning("the last run did not stop cleanly: re-hashing every installed model in full")
    return False


def mark_clean_stop(fs: FileSystem, root: Path) -> None:
    """At an orderly stop: the next start may trust the stamps."""
    if not (root / "slots").is_dir():
        return
    try:
        write_atomic(fs, root / CLEAN_NAME, b"stopped in order\n")
    except OtaError as err:
        _LOG.warning("can't write %s: %s (the next start re-hashes the models)", CLEAN_NAME, err.message)


def describe(err: ModelError | OtaError) -> str:
    return f"[{err.code}] {err.message}"
