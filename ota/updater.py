"""Trust: TUF (python-tuf ngclient) for the metadata only, then our own check of the bundle bytes.

Each check builds a fresh `Updater` bootstrapped from the root shipped with the firmware, so a lost
or damaged metadata cache only costs a re-download, and rotated roots are walked up from it.
ngclient persists metadata with temp + rename but no fsync; `_DurableUpdater` routes those writes
through `ota.atomic`. Bundles are never fetched by ngclient (it buffers whole files in memory):
`ota.fetcher` downloads them and `verify_target()` checks them against the signed TargetFile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, UpdaterConfig

from device.errors import OtaError
from ota.atomic import FileSystem, makedirs, write_atomic

_LOG = logging.getLogger(__name__)


def target_name(kind: str) -> str:
    """One current bundle per kind in a repository: the name is stable, the version is in `custom`."""
    return f"bundles/{kind}.tar"


@dataclass(frozen=True, slots=True)
class Offer:
    """A bundle the signed metadata currently offers for one kind."""

    kind: str
    name: str
    version: str
    min_voxhome: str
    target: TargetFile

    @property
    def length(self) -> int:
        return int(self.target.length)


class _DurableUpdater(Updater):
    fs: FileSystem = FileSystem()

    def _persist_file(self, filename: str, data: bytes) -> None:
        # ngclient's own version renames without fsync; a power cut could leave an empty file.
        write_atomic(self.fs, Path(filename), data)


def _map_tuf_error(err: Exception) -> OtaError:
    if isinstance(err, tuf_errors.ExpiredMetadataError):
        return OtaError("ota-expired", f"update metadata has expired: {err}")
    if isinstance(err, tuf_errors.UnsignedMetadataError):
        return OtaError("ota-bad-signature", f"update metadata is not signed by trusted keys: {err}")
    if isinstance(err, tuf_errors.BadVersionNumberError):
        return OtaError("ota-metadata-rollback", f"update metadata went backwards: {err}")
    if isinstance(err, tuf_errors.RepositoryError):
        return OtaError("ota-metadata", f"update metadata rejected: {err}")
    if isinstance(err, tuf_errors.DownloadError):
        return OtaError("ota-download", f"update server unreachable or failing: {err}")
    return OtaError("ota-metadata", f"update metadata could not be loaded: {type(err).__name__}: {err}")


class MetadataClient:
    """Refresh signed metadata from `repository_url` and read what it offers."""

    def __init__(self, metadata_dir: Path, repository_url: str, trusted_root: bytes, fs: FileSystem | None = None) -> None:
        self.fs = fs or FileSystem()
        self.metadata_dir = Path(metadata_dir)
        self.base = repository_url.rstrip("/")
        makedirs(self.fs, self.metadata_dir)
        updater = _DurableUpdater(
            str(self.metadata_dir), f"{self.base}/metadata/", target_base_url=f"{self.base}/targets/",
            config=UpdaterConfig(max_root_rotations=64), bootstrap=trusted_root,
        )
        updater.fs = self.fs
        self._updater = updater

    def refresh(self) -> None:
        try:
            self._updater.refresh()
        except OtaError:
            raise
        except Exception as err:  # noqa: BLE001 — the boundary: anything from TUF becomes one OtaError
            raise _map_tuf_error(err) from None

    def offer(self, kind: str) -> Offer | None:
        try:
            target = self._updater.get_targetinfo(target_name(kind))
        except Exception as err:  # noqa: BLE001
            raise _map_tuf_error(err) from None
        if target is None:
            return None
        custom: dict[str, Any] = target.custom
        if custom.get("kind") != kind or not isinstance(custom.get("version"), str):
            raise OtaError("ota-metadata", f"target {target.path} lacks kind/version in its custom info")
        return Offer(kind=kind, name=str(custom.get("name", kind)), version=custom["version"],
                     min_voxhome=str(custom.get("min_voxhome", "0")), target=target)

    def url(self, offer: Offer) -> str:
        """Where the bundle bytes live (hash-prefixed: the repository uses consistent snapshots)."""
        consistent = self._updater._trusted_set.root.consistent_snapshot  # noqa: SLF001 — no public accessor
        path = offer.target.get_prefixed_paths()[0] if consistent else offer.target.path
        return f"{self.base}/targets/{quote(path)}"


def verify_target(offer: Offer, path: Path) -> None:
    """Length and every hash the signed metadata lists; raises ota-hash on any difference."""
    try:
        with path.open("rb") as fh:
            offer.target.verify_length_and_hashes(fh)
    except tuf_errors.LengthOrHashMismatchError as err:
        raise OtaError("ota-hash", f"downloaded {offer.target.path} does not match the signed metadata: {err}") from None
    except OSError as err:
        raise OtaError("ota-io", f"can't read {path}: {err.strerror}") from None
