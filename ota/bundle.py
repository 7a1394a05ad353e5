"""One model bundle directory ⇄ one archive file (an uncompressed tar: the weights are already dense).

`pack()` verifies the directory against its manifest first; `unpack()` trusts nothing in the
archive: every member must be a regular file the manifest lists, with its size and sha256, and the
manifest is written last, so a slot directory with a manifest is a complete bundle. All writes go
through the OTA filesystem layer with fsync, so a power cut mid-unpack leaves an incomplete slot
that is never loaded (no manifest, or files that fail verification) rather than a silent mix.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from device.errors import ModelError, OtaError
from models.manifest import MANIFEST_NAME, BundleManifest, parse_manifest, verify_bundle
from ota.atomic import FileSystem, makedirs, wrap_os_error

_CHUNK = 1 << 16
_MAX_MANIFEST = 4 << 20
"""Manifests are read whole; a real one is a few KiB."""


def pack(bundle_dir: Path, archive: Path) -> BundleManifest:
    """Write `bundle_dir` (verified) as a tar with the manifest first and files in manifest order."""
    manifest = verify_bundle(bundle_dir)
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in (MANIFEST_NAME, *(f.path for f in manifest.files)):
            info = tar.gettarinfo(str(bundle_dir / rel), arcname=rel)
            # Reproducible archives: same bundle, same bytes, same sha256 in the TUF metadata.
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with (bundle_dir / rel).open("rb") as fh:
                tar.addfile(info, fh)
    tmp.replace(archive)
    return manifest


def read_archive_manifest(archive: Path) -> BundleManifest:
    """The manifest inside an archive, without unpacking anything else."""
    try:
        with tarfile.open(archive, "r:") as tar:
            member = tar.getmember(MANIFEST_NAME)
            if member.size > _MAX_MANIFEST:
                raise OtaError("ota-bad-bundle", f"{archive}: {MANIFEST_NAME} is {member.size} bytes; not a manifest")
            fh = tar.extractfile(member)
            if fh is None:
                raise OtaError("ota-bad-bundle", f"{archive}: {MANIFEST_NAME} is not a regular file")
            data = json.loads(fh.read().decode("utf-8"))
    except KeyError:
        raise OtaError("ota-bad-bundle", f"{archive} has no {MANIFEST_NAME}") from None
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OtaError("ota-bad-bundle", f"{archive} is not a readable bundle archive: {err}") from None
    try:
        return parse_manifest(data, source=f"{archive}:{MANIFEST_NAME}")
    except ModelError as err:
        raise OtaError("ota-bad-bundle", err.message) from None


def unpack(fs: FileSystem, archive: Path, dest: Path) -> BundleManifest:
    """Unpack into the (new or empty) directory `dest`, checking every file; the manifest goes last."""
    manifest = read_archive_manifest(archive)
    expected = {f.path: f for f in manifest.files}
    try:
        makedirs(fs, dest)
        if any(dest.iterdir()):
            raise OtaError("ota-io", f"{dest} is not empty; refusing to unpack over it")
        with tarfile.open(archive, "r:") as tar:
            manifest_bytes = b""
            seen: set[str] = set()
            dirs: set[Path] = {dest}
            for member in tar:
                name = member.name
                if name == MANIFEST_NAME:
                    fh = tar.extractfile(member)
                    manifest_bytes = fh.read() if fh else b""
                    continue
                entry = expected.get(name)
                if entry is None or not member.isreg() or name in seen:
                    raise OtaError("ota-bad-bundle", f"{archive}: unexpected member {name!r}")
                if member.size != entry.size:
                    raise OtaError("ota-bad-bundle", f"{archive}: {name} is {member.size} bytes, manifest says {entry.size}")
                target = dest / name
                if not target.parent.exists():
                    makedirs(fs, target.parent)
                dirs.add(target.parent)
                _copy_checked(fs, tar, member, target, entry.sha256)
                seen.add(name)
            missing = sorted(set(expected) - seen)
            if missing:
                raise OtaError("ota-bad-bundle", f"{archive} lacks {', '.join(missing)}")
            for directory in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                fs.fsync_dir(directory)
            # The manifest last: its presence marks the slot complete.
            fd = fs.open_new(dest / MANIFEST_NAME)
            try:
                fs.write(fd, manifest_bytes)
                fs.fsync(fd)
            finally:
                fs.close(fd)
            fs.fsync_dir(dest)
    except OSError as err:
        raise wrap_os_error(err, f"unpacking into {dest}") from None
    except tarfile.TarError as err:
        raise OtaError("ota-bad-bundle", f"{archive} is not a valid archive: {err}") from None
    return manifest


def _copy_checked(fs: FileSystem, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, sha256: str) -> None:
    src = tar.extractfile(member)
    if src is None:
        raise OtaError("ota-bad-bundle", f"{member.name} is not a regular file")
    digest = hashlib.sha256()
    fd = fs.open_new(target)
    try:
        while block := src.read(_CHUNK):
            digest.update(block)
            fs.write(fd, block)
        fs.fsync(fd)
    finally:
        fs.close(fd)
    if digest.hexdigest() != sha256:
        raise OtaError("ota-bad-bundle", f"{member.name} does not match its sha256 in the manifest")
