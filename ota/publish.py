"""The vendor side: keys and a signed TUF repository of bundles (`voxhome ota keygen|publish`).

Repository layout, servable by any static HTTP server::

    metadata/1.root.json …      every root version (devices walk rotations one by one)
    metadata/N.targets.json     consistent snapshots: versioned names, never overwritten
    metadata/N.snapshot.json
    metadata/timestamp.json     the only file rewritten in place (by rename)
    targets/bundles/<sha256>.<kind>.tar

Keys are ed25519 PEM files (`<role>.pem`, or `<role>-<n>.pem` for more keys of one role). A
routine publish needs only the targets, snapshot and timestamp keys: the root keys are used at
`init` and for rotation only, so they can stay offline. Every signature set is checked against the
role's threshold before anything is written.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from device.errors import OtaError
from ota.atomic import FileSystem, makedirs, read_chunks, write_atomic
from ota.bundle import read_archive_manifest
from ota.slots import parse_version
from ota.updater import target_name

_LOG = logging.getLogger(__name__)
ROLES = ("root", "targets", "snapshot", "timestamp")
DEFAULT_EXPIRY = {"root": timedelta(days=365), "targets": timedelta(days=90),
                  "snapshot": timedelta(days=30), "timestamp": timedelta(days=7)}
_KEY_FILE = re.compile(r"^(root|targets|snapshot|timestamp)(-[\w.]+)?\.pem$")


def keygen(keydir: Path, name: str) -> str:
    """Create an ed25519 key `<keydir>/<name>.pem` (mode 0600); returns its TUF keyid."""
    keydir.mkdir(parents=True, exist_ok=True)
    path = keydir / f"{name}.pem"
    if path.exists():
        raise OtaError("ota-key-exists", f"{path} already exists; refusing to overwrite a key")
    signer = CryptoSigner.generate_ed25519()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.private_bytes)
    return str(signer.public_key.keyid)


def load_signer(path: Path) -> CryptoSigner:
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
        return CryptoSigner(private)
    except (OSError, ValueError, TypeError) as err:
        raise OtaError("ota-bad-key", f"can't load key {path}: {err}") from None


def load_keydir(keydir: Path) -> dict[str, list[CryptoSigner]]:
    """Signers found in `keydir`, grouped by the role their file name says."""
    found: dict[str, list[CryptoSigner]] = {role: [] for role in ROLES}
    if not keydir.is_dir():
        raise OtaError("ota-bad-key", f"key directory {keydir} does not exist")
    for path in sorted(keydir.iterdir()):
        match = _KEY_FILE.match(path.name)
        if match:
            found[match.group(1)].append(load_signer(path))
    return found


@dataclass(frozen=True, slots=True)
class Published:
    name: str
    kind: str
    version: str
    length: int
    targets_version: int


def _expiry(delta: timedelta) -> datetime:
    return (datetime.now(UTC) + delta).replace(microsecond=0)


class Repository:
    """A TUF repository directory; every metadata write is atomic (temp + fsync + rename)."""

    def __init__(self, path: Path, fs: FileSystem | None = None,
                 expiry: Mapping[str, timedelta] | None = None) -> None:
        self.path = Path(path)
        self.fs = fs or FileSystem()
        self.expiry = {**DEFAULT_EXPIRY, **(expiry or {})}

    @property
    def metadata_dir(self) -> Path:
        return self.path / "metadata"

    def exists(self) -> bool:
        return (self.metadata_dir / "1.root.json").exists()

    # -- reading -------------------------------------------------------------------------------

    def _latest(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            path = self.metadata_dir / "timestamp.json"
        else:
            versions = [int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"*.{role}.json")]
            path = self.metadata_dir / f"{max(versions, default=0)}.{role}.json"
        if not path.exists():
            raise OtaError("ota-no-repo", f"{self.path} has no {role} metadata (run publish with --init)")
        try:
            return Metadata.from_bytes(path.read_bytes())
        except Exception as err:  # noqa: BLE001 — tuf's deserializer raises several types
            raise OtaError("ota-metadata", f"{path} is not valid TUF metadata: {err}") from None

    def root(self) -> Metadata[Root]:
        return self._latest("root")

    def trusted_root_bytes(self) -> bytes:
        """Version 1 of root: what ships with the firmware as the bootstrap."""
        return (self.metadata_dir / "1.root.json").read_bytes()

    # -- writing -------------------------------------------------------------------------------

    def _sign_and_write(self, role: str, md: Metadata[Any], signers: Sequence[Signer], root: Metadata[Root],
                        extra_root: Metadata[Root] | None = None) -> None:
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        try:
            root.verify_delegate(role, md)
            if extra_root is not None:  # a new root must satisfy the old root's threshold too
                extra_root.verify_delegate(role, md)
        except tuf_errors.UnsignedMetadataError as err:
            raise OtaError("ota-threshold", f"not enough valid {role} signatures: {err}") from None
        name = "timestamp.json" if role == "timestamp" else f"{md.signed.version}.{role}.json"
        write_atomic(self.fs, self.metadata_dir / name, md.to_bytes(JSONSerializer(compact=False)))

    def _signers(self, role: str, keys: Mapping[str, Sequence[CryptoSigner]], root: Root) -> list[CryptoSigner]:
        wanted = set(root.roles[role].keyids)
        chosen = [s for s in keys.get(role, ()) if s.public_key.keyid in wanted]
        if len(chosen) < root.roles[role].threshold:
            raise OtaError("ota-threshold", f"{role} needs {root.roles[role].threshold} of its keys; "
                           f"{len(chosen)} found in the key directory")
        return chosen

    def init(self, keys: Mapping[str, Sequence[CryptoSigner]], thresholds: Mapping[str, int] | None = None) -> None:
        """Create version 1 of every role from the keys given (root keys needed here, and only here)."""
        if self.exists():
            raise OtaError("ota-repo-exists", f"{self.path} already holds a repository")
        makedirs(self.fs, self.metadata_dir)
        makedirs(self.fs, self.path / "targets" / "bundles")
        root = Root(expires=_expiry(self.expiry["root"]), consistent_snapshot=True)
        for role in ROLES:
            if not keys.get(role):
                raise OtaError("ota-bad-key", f"no {role} key given ({role}.pem)")
            for signer in keys[role]:
                root.add_key(signer.public_key, role)
            root.roles[role].threshold = (thresholds or {}).get(role, 1)
        root_md = Metadata(root)
        self._sign_and_write("root", root_md, self._signers("root", keys, root), root_md)
        targets_md = Metadata(Targets(expires=_expiry(self.expiry["targets"])))
        self._sign_and_write("targets", targets_md, self._signers("targets", keys, root), root_md)
        self._snapshot_and_timestamp(keys, root_md, targets_md.signed.version)

    def _snapshot_and_timestamp(self, keys: Mapping[str, Sequence[CryptoSigner]], root_md: Metadata[Root],
                                targets_version: int) -> None:
        try:
            snapshot_md: Metadata[Snapshot] = self._latest("snapshot")
            snapshot_md.signed.version += 1
        except OtaError:
            snapshot_md = Metadata(Snapshot())
        snapshot_md.signed.meta["targets.json"] = MetaFile(version=targets_version)
        snapshot_md.signed.expires = _expiry(self.expiry["snapshot"])
        self._sign_and_write("snapshot", snapshot_md, self._signers("snapshot", keys, root_md.signed), root_md)
        self.refresh_timestamp(keys, snapshot_version=snapshot_md.signed.version)

    def refresh_timestamp(self, keys: Mapping[str, Sequence[CryptoSigner]], *, snapshot_version: int | None = None) -> int:
        """Re-sign timestamp (run from cron well inside its expiry, or devices stop updating)."""
        root_md = self.root()
        if snapshot_version is None:
            snapshot_version = self._latest("snapshot").signed.version
        try:
            ts_md: Metadata[Timestamp] = self._latest("timestamp")
            ts_md.signed.version += 1
        except OtaError:
            ts_md = Metadata(Timestamp())
        ts_md.signed.snapshot_meta = MetaFile(version=snapshot_version)
        ts_md.signed.expires = _expiry(self.expiry["timestamp"])
        self._sign_and_write("timestamp", ts_md, self._signers("timestamp", keys, root_md.signed), root_md)
        return int(ts_md.signed.version)

    def add_bundles(self, archives: Sequence[Path], keys: Mapping[str, Sequence[CryptoSigner]],
                    *, allow_downgrade: bool = False) -> list[Published]:
        """List each bundle archive as its kind's current target; sign targets, snapshot, timestamp."""
        root_md = self.root()
        targets_md: Metadata[Targets] = self._latest("targets")
        added = []
        for archive in archives:
            manifest = read_archive_manifest(archive)
            name = target_name(manifest.kind)
            current = targets_md.signed.targets.get(name)
            if current is not None and not allow_downgrade:
                old = str(current.custom.get("version", "0"))
                if parse_version(manifest.version) <= parse_version(old):
                    raise OtaError("ota-downgrade", f"{manifest.kind} {manifest.version} is not newer than the "
                                   f"published {old} (devices would refuse it)")
            target = TargetFile.from_file(name, str(archive), ["sha256"])
            target.unrecognized_fields["custom"] = {
                "kind": manifest.kind, "name": manifest.name, "version": manifest.version,
                "min_voxhome": manifest.min_voxhome, "runtime": manifest.runtime,
            }
            digest = target.hashes["sha256"]
            dest = self.path / "targets" / "bundles" / f"{digest}.{manifest.kind}.tar"
            makedirs(self.fs, dest.parent)
            write_atomic(self.fs, dest, read_chunks(archive))
            targets_md.signed.targets[name] = target
            added.append((manifest, target))
        targets_md.signed.version += 1
        targets_md.signed.expires = _expiry(self.expiry["targets"])
        self._sign_and_write("targets", targets_md, self._signers("targets", keys, root_md.signed), root_md)
        self._snapshot_and_timestamp(keys, root_md, targets_md.signed.version)
        return [Published(target.path, m.kind, m.version, int(target.length), int(targets_md.signed.version))
                for m, target in added]

    def rotate(self, role: str, new_keys: Sequence[CryptoSigner], keys: Mapping[str, Sequence[CryptoSigner]],
               *, threshold: int | None = None) -> int:
        """Replace `role`'s keys with `new_keys` in a new root version, signed by old and new root keys.

        `keys` must hold enough current root keys (and, when rotating root, the new ones too).
        Devices accept the new root because the old root's threshold signed it.
        """
        old_root_md = self.root()
        new_root_md: Metadata[Root] = Metadata.from_bytes(old_root_md.to_bytes())
        root = new_root_md.signed
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        for signer in new_keys:
            root.add_key(signer.public_key, role)
        if threshold is not None:
            root.roles[role].threshold = threshold
        root.version += 1
        root.expires = _expiry(self.expiry["root"])
        old_signers = self._signers("root", keys, old_root_md.signed)
        new_signers = list(new_keys) if role == "root" else self._signers("root", keys, root)
        by_id = {s.public_key.keyid: s for s in (*old_signers, *new_signers)}
        self._sign_and_write("root", new_root_md, list(by_id.values()), new_root_md, extra_root=old_root_md)
        if role != "root":
            # Re-sign the rotated role (and what depends on it) with its new keys.
            rekeyed = {**keys, role: list(new_keys)}
            targets_md: Metadata[Targets] = self._latest("targets")
            if role == "targets":
                targets_md.signed.version += 1
                self._sign_and_write("targets", targets_md, self._signers("targets", rekeyed, root), new_root_md)
            self._snapshot_and_timestamp(rekeyed, new_root_md, targets_md.signed.version)
        return int(root.version)

