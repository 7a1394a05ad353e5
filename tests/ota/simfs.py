"""A write layer that simulates a power cut: only fsynced file data and fsynced directory entries survive.

It performs every operation on the real files (so the code under test reads what it wrote) and
keeps a model of what is durable: per inode the bytes at its last fsync, per directory the
entries at its last fsync. `cut_after=N` raises PowerCut before operation N+1; `durable_image()`
then writes the tree as a disk would hold it after the cut. Everything present at construction
counts as durable. This is the conservative POSIX model (no ext4 "auto_da_alloc" kindness).
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ota.atomic import FileSystem


class PowerCut(BaseException):
    """BaseException: no `except Exception`/`except OSError` in the code under test can swallow it."""


@dataclass
class _Inode:
    is_dir: bool
    live: bytearray = field(default_factory=bytearray)
    synced: bytes = b""
    live_entries: dict[str, _Inode] = field(default_factory=dict)
    durable_entries: dict[str, _Inode] = field(default_factory=dict)


class SimulatedPowerCutFS(FileSystem):
    def __init__(self, root: Path, *, cut_after: int | None = None, enospc_after_bytes: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.cut_after = cut_after
        self.ops = 0
        self.enospc_after_bytes = enospc_after_bytes
        self.written = 0
        self._fds: dict[int, _Inode] = {}
        self.top = self._scan(self.root)

    def _scan(self, path: Path) -> _Inode:
        if path.is_dir():
            node = _Inode(is_dir=True)
            for child in path.iterdir():
                node.live_entries[child.name] = self._scan(child)
            node.durable_entries = dict(node.live_entries)
            return node
        data = path.read_bytes()
        return _Inode(is_dir=False, live=bytearray(data), synced=data)

    def _tick(self) -> None:
        if self.cut_after is not None and self.ops >= self.cut_after:
            raise PowerCut(f"power cut before operation {self.ops + 1}")
        self.ops += 1

    def tracked(self, path: Path) -> bool:
        return Path(path).resolve().is_relative_to(self.root)

    def _parent(self, path: Path) -> tuple[_Inode, str]:
        rel = Path(path).resolve().relative_to(self.root)
        node = self.top
        here = self.root
        for part in rel.parts[:-1]:
            here = here / part
            if part not in node.live_entries:
                # Created behind our back (not through the layer): adopt it as live, not durable.
                node.live_entries[part] = self._scan(here)
            node = node.live_entries[part]
        return node, rel.parts[-1]

    def _node(self, path: Path) -> _Inode:
        parent, name = self._parent(path)
        if name not in parent.live_entries:
            parent.live_entries[name] = self._scan(Path(path))
        return parent.live_entries[name]

    # -- the FileSystem primitives --------------------------------------------------------------

    def open_new(self, path: Path) -> int:
        if not self.tracked(path):
            return super().open_new(path)
        self._tick()
        fd = super().open_new(path)
        parent, name = self._parent(path)
        node = parent.live_entries.get(name)
        if node is None:
            node = _Inode(is_dir=False)
            parent.live_entries[name] = node
        node.live = bytearray()
        node.synced = b""  # a truncation may reach the disk before anything else does
        self._fds[fd] = node
        return fd

    def open_append(self, path: Path) -> int:
        if not self.tracked(path):
            return super().open_append(path)
        self._tick()
        fd = super().open_append(path)
        self._fds[fd] = self._node(path)
        return fd

    def write(self, fd: int, data: bytes) -> None:
        if fd not in self._fds:
            return super().write(fd, data)
        self._tick()
        if self.enospc_after_bytes is not None and self.written + len(data) > self.enospc_after_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write(fd, data)
        self.written += len(data)
        self._fds[fd].live += data

    def fsync(self, fd: int) -> None:
        if fd not in self._fds:
            return super().fsync(fd)
        self._tick()
        super().fsync(fd)
        node = self._fds[fd]
        node.synced = bytes(node.live)

    def close(self, fd: int) -> None:
        # Closing makes nothing durable, and it must still happen after a cut (the finally blocks).
        super().close(fd)
        self._fds.pop(fd, None)

    def rename(self, src: Path, dst: Path) -> None:
        if not self.tracked(src):
            return super().rename(src, dst)
        self._tick()
        super().rename(src, dst)
        sparent, sname = self._parent(src)
        dparent, dname = self._parent(dst)
        dparent.live_entries[dname] = sparent.live_entries.pop(sname)

    def fsync_dir(self, path: Path) -> None:
        if not self.tracked(path):
            return super().fsync_dir(path)
        self._tick()
        super().fsync_dir(path)
        node = self.top if Path(path).resolve() == self.root else self._node(path)
        node.durable_entries = dict(node.live_entries)

    def unlink(self, path: Path) -> None:
        if not self.tracked(path):
            return super().unlink(path)
        self._tick()
        super().unlink(path)
        parent, name = self._parent(path)
        parent.live_entries.pop(name, None)

    def mkdir(self, path: Path) -> None:
        if not self.tracked(path):
            return super().mkdir(path)
        self._tick()
        super().mkdir(path)
        parent, name = self._parent(path)
        parent.live_entries[name] = _Inode(is_dir=True)

    def rmdir(self, path: Path) -> None:
        if not self.tracked(path):
            return super().rmdir(path)
        self._tick()
        super().rmdir(path)
        parent, name = self._parent(path)
        parent.live_entries.pop(name, None)

    # -- after the cut --------------------------------------------------------------------------

    def durable_image(self, dest: Path) -> None:
        """Write what a disk would hold after the cut to `dest` (which must not exist)."""
        dest.mkdir(parents=True)
        self._write_image(self.top, dest)

    def _write_image(self, node: _Inode, dest: Path) -> None:
        for name, child in node.durable_entries.items():
            target = dest / name
            if child.is_dir:
                target.mkdir()
                self._write_image(child, target)
            else:
                target.write_bytes(child.synced)


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)
