"""Bundle download over HTTP with resume (Range), timeouts and a size cap, streamed to disk.

TUF's own `download_target()` buffers the whole file in memory and writes it non-atomically, so
bundles come through here instead: into a `.part` file in the downloads directory, fsynced as it
grows, resumed from its current length after a cut or a dropped connection. Nothing here trusts
the bytes: the caller checks length and hashes against the signed TUF metadata.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.errors import OtaError
from ota.atomic import FileSystem, wrap_os_error

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout_s: float = 20.0
    """Per connect and per read: a stalled server fails the attempt instead of hanging the agent."""
    chunk_bytes: int = 1 << 16
    sync_every_bytes: int = 4 << 20
    """fsync this often, so a cut loses at most this much of a long download."""


def download(
    fs: FileSystem,
    url: str,
    part: Path,
    length: int,
    *,
    config: FetchConfig = FetchConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fetch `url` into `part` until it holds exactly `length` bytes; resume what is already there."""
    have = part.stat().st_size if part.exists() else 0
    if have > length:
        _LOG.warning("%s is longer than the target (%s > %s); starting over", part, have, length)
        fs.unlink(part)
        have = 0
    if have == length:
        return part
    headers = {"User-Agent": "voxhome-ota"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:  # noqa: S310 (http(s) only)
            if have and response.status != 206:
                # The server ignored Range: take the whole body from the start.
                _LOG.info("server did not resume %s (status %s); downloading from zero", url, response.status)
                have = 0
            fd = fs.open_append(part) if have else fs.open_new(part)
            try:
                unsynced = 0
                while True:
                    block = response.read(config.chunk_bytes)
                    if not block:
                        break
                    if have + len(block) > length:
                        raise OtaError("ota-too-large", f"{url} is longer than the {length} bytes the metadata allows")
                    fs.write(fd, block)
                    have += len(block)
                    unsynced += len(block)
                    if unsynced >= config.sync_every_bytes:
                        fs.fsync(fd)
                        unsynced = 0
                    if progress is not None:
                        progress(have, length)
                fs.fsync(fd)
            finally:
                fs.close(fd)
    except OtaError:
        raise
    except http.client.HTTPException as err:  # IncompleteRead and friends: the connection broke
        raise OtaError("ota-download", f"{url}: {type(err).__name__} (kept {have} bytes to resume)") from None
    except urllib.error.HTTPError as err:
        raise OtaError("ota-download", f"{url}: HTTP {err.code}") from None
    except OSError as err:  # URLError, timeouts, resets and the disk are all OSErrors
        if isinstance(err, urllib.error.URLError) or isinstance(err, (TimeoutError, ConnectionError)):
            raise OtaError("ota-download", f"{url}: {getattr(err, 'reason', err)} (kept {have} bytes to resume)") from None
        raise wrap_os_error(err, f"writing {part}") from None
    if have != length:
        raise OtaError("ota-download", f"{url}: connection ended at {have} of {length} bytes (will resume)")
    return part
