"""Keeping a long-running process's resident memory near what it actually uses (glibc only).

ONNX Runtime allocates and frees multi-megabyte activation buffers on every call. With glibc's
default, adaptive mmap threshold those end up on the heap, which fragments and never shrinks:
over a hundred utterances the runner's RSS creeps up ~20 MB above its working set. A fixed
256 KB threshold sends big buffers to mmap (returned to the kernel on free), and a trim after
each utterance hands back what the heap no longer needs. Elsewhere (musl, macOS) these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

_LOGGER = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt  # noqa: B018 (probe: only glibc has these)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_heap_growth() -> None:
    """Process-wide, idempotent: big allocations go to mmap so freeing them shrinks RSS."""
    libc = _libc()
    if libc is not None and not libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        _LOGGER.debug("mallopt(M_MMAP_THRESHOLD) refused")


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
