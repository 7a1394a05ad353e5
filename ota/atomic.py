"""Durable writes: temp file + fsync(file) + rename + fsync(directory), behind a small filesystem layer.

Every OTA write goes through a `FileSystem`, so tests can swap in a layer that simulates a power
cut by keeping only what was fsynced (file contents *and* directory entries). Reads go straight to
`os`: only writes decide what survives a cut.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from device.errors import OtaError

_LOG = logging.getLogger(__name__)
TMP_SUFFIX = ".tmp"


class FileSystem:
    """The write primitives OTA uses; this one is the real filesystem."""

    def open_new(self, path: Path) -> int:
        """Create (or truncate) `path` for writing; returns a descriptor."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def open_append(self, path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def free_bytes(self, path: Path) -> int:
        return shutil.disk_usage(path).free


def wrap_os_error(err: OSError, what: str) -> OtaError:
    """Turn an OSError into an OtaError with a stable code (disk full is its own case)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return OtaError("ota-disk-full", f"disk full while {what}")
    return OtaError("ota-io", f"{what}: {err.strerror or err}")


def makedirs(fs: FileSystem, path: Path) -> None:
    """mkdir -p, fsyncing each parent whose entries changed so the new directories survive a cut."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        fs.mkdir(directory)
        fs.fsync_dir(directory.parent)


def write_durable(fs: FileSystem, path: Path, chunks: Iterable[bytes]) -> None:
    """Write a new file in place and fsync it (the caller renames or fsyncs the directory)."""
    fd = fs.open_new(path)
    try:
        for chunk in chunks:
            fs.write(fd, chunk)
        fs.fsync(fd)
    finally:
        fs.close(fd)


def write_atomic(fs: FileSystem, path: Path, data: bytes | Iterable[bytes]) -> None:
    """Replace `path` with `data` (bytes, or chunks of them) so that after a power cut it holds the
    old or the new bytes, never a mix."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        write_durable(fs, tmp, (data,) if isinstance(data, bytes) else data)
        fs.rename(tmp, path)
        fs.fsync_dir(path.parent)
    except OSError as err:
        try:
            fs.unlink(tmp)
        except OSError:
            pass
        raise wrap_os_error(err, f"writing {path}") from None


def read_chunks(path: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes in bounded pieces (copies and hashes never hold a whole bundle in memory)."""
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            yield block


def remove_tree(fs: FileSystem, path: Path) -> None:
    """Delete a directory tree through the layer (children first), then fsync its parent once."""
    if not path.exists() and not path.is_symlink():
        return
    _remove(fs, path)
    fs.fsync_dir(path.parent)


def _remove(fs: FileSystem, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.iterdir()):
            _remove(fs, child)
        fs.rmdir(path)
    else:
        fs.unlink(path)


def clean_temps(fs: FileSystem, directory: Path) -> int:
    """Remove leftover `*.tmp` files from an interrupted write_atomic (they are never read)."""
    removed = 0
    if directory.is_dir():
        for tmp in directory.glob("*" + TMP_SUFFIX):
            fs.unlink(tmp)
            removed += 1
        if removed:
            fs.fsync_dir(directory)
            _LOG.info("removed %s leftover temp file(s) in %s", removed, directory)
    return removed
