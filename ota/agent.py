"""The update agent: check → download → verify → install → health check → switch → prove → keep or roll back.

Each step is safe to interrupt: the active slot is never written, the switch is one atomic
rename of state.json, a partial download is resumed, and a half-unpacked inactive slot is wiped
before the next try. Every outcome is reported as a status with the names fleet tools use
(`downloading`, `installing`, `pending`, `success`, `failure`, `rolled-back`), written to
status.json and, when a broker is reachable, published retained on `voxhome/<id>/ota/status`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.errors import OtaError, VoxError
from ota.atomic import FileSystem, makedirs, remove_tree, write_atomic
from ota.bundle import read_archive_manifest, unpack
from ota.fetcher import FetchConfig, download
from ota.health import run_health_check
from ota.integrity import check_firmware, forget_stamp, voxhome_version
from ota.slots import SlotStore, disk_free, parse_version
from ota.updater import MetadataClient, Offer, verify_target

_LOG = logging.getLogger(__name__)
STATUS_NAME = "status.json"
HealthCheck = Callable[[str, Path], str]
StatusSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    state_dir: Path
    repository_url: str
    trusted_root: bytes
    kinds: tuple[str, ...] = ("wake", "vad", "asr", "prompts", "tts")
    metadata_dir: Path | None = None
    """TUF metadata cache; default <state_dir>/tuf."""
    trial_attempts: int = 3
    health_timeout_s: float = 120.0
    disk_margin_bytes: int = 32 << 20
    voxhome_version: str = field(default_factory=voxhome_version)
    fetch: FetchConfig = FetchConfig()


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str
    action: str
    """'update', 'up-to-date', 'none' (nothing published), or a refusal: 'downgrade', 'rejected', 'incompatible'."""
    current: str | None
    offered: str | None
    reason: str = ""


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        fs: FileSystem | None = None,
        sink: StatusSink | None = None,
        health: HealthCheck | None = None,
        clock: Callable[[], float] = time.time,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.fs = fs or FileSystem()
        self.store = SlotStore(config.state_dir, self.fs)
        self.sink = sink
        self.health = health or (lambda kind, path: run_health_check(kind, path, timeout_s=config.health_timeout_s))
        self.clock = clock
        self.on_step = on_step or (lambda step: None)
        self._last_progress = -1

    # -- status --------------------------------------------------------------------------------

    def report(self, state: str, kind: str | None, *, version: str | None = None, code: str | None = None,
               message: str = "", progress: float | None = None, persist: bool = True) -> dict[str, Any]:
        status: dict[str, Any] = {"state": state, "kind": kind, "version": version, "code": code,
                                  "message": message, "time": round(self.clock(), 3)}
        if progress is not None:
            status["progress"] = round(progress, 3)
        if persist:
            try:
                makedirs(self.fs, self.config.state_dir)
                write_atomic(self.fs, self.config.state_dir / STATUS_NAME, _dumps(status))
            except OtaError as err:  # a full disk must not hide the status from MQTT
                _LOG.warning("can't write %s: %s", STATUS_NAME, err.message)
        if self.sink is not None:
            self.sink(status)
        log = _LOG.warning if state in ("failure", "rolled-back") else _LOG.info
        log("ota %s %s %s %s", kind or "-", state, version or "", message)
        return status

    def last_status(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.config.state_dir / STATUS_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # -- checking ------------------------------------------------------------------------------

    def _client(self) -> MetadataClient:
        metadata_dir = self.config.metadata_dir or self.config.state_dir / "tuf"
        client = MetadataClient(metadata_dir, self.config.repository_url, self.config.trusted_root, self.fs)
        client.refresh()
        return client

    def decide(self, kind: str, offer: Offer | None) -> Decision:
        """Pure: what to do with what the signed metadata offers, given the installed state."""
        current = self.store.load().kind(kind)
        if offer is None:
            return Decision(kind, "none", current.version, None, "nothing published for this kind")
        offered = parse_version(offer.version)
        if offered < parse_version(current.floor):
            return Decision(kind, "downgrade", current.version, offer.version,
                            f"{offer.version} is below the version floor {current.floor}")
        if offered == parse_version(current.version):
            return Decision(kind, "up-to-date", current.version, offer.version)
        if offered < parse_version(current.version):
            return Decision(kind, "downgrade", current.version, offer.version,
                            f"{offer.version} is older than the installed {current.version}")
        if offer.version in current.rejected:
            return Decision(kind, "rejected", current.version, offer.version,
                            f"{offer.version} failed before on this device")
        if parse_version(offer.min_voxhome) > parse_version(self.config.voxhome_version):
            return Decision(kind, "incompatible", current.version, offer.version,
                            f"needs voxhome {offer.min_voxhome}, this is {self.config.voxhome_version}")
        return Decision(kind, "update", current.version, offer.version)

    def check(self) -> list[Decision]:
        self.store.recover()
        client = self._client()
        return [self.decide(kind, client.offer(kind)) for kind in self.installed_kinds()]

    def installed_kinds(self) -> list[str]:
        state = self.store.load()
        return [k for k in self.config.kinds if k in state.kinds]

    # -- applying ------------------------------------------------------------------------------

    def apply(self, kinds: list[str] | None = None) -> list[dict[str, Any]]:
        """Check and install every kind with an update; one kind's failure doesn't stop the others."""
        self.store.recover()
        self.on_step("start")
        try:
            client = self._client()
        except OtaError as err:
            return [self.report("failure", None, code=err.code, message=err.message)]
        self.on_step("metadata")
        results = []
        for kind in kinds or self.installed_kinds():
            try:
                results.append(self.apply_one(client, kind))
            except OtaError as err:
                results.append(self.report("failure", kind, code=err.code, message=err.message))
        return results

    def apply_one(self, client: MetadataClient, kind: str) -> dict[str, Any]:
        offer = client.offer(kind)
        decision = self.decide(kind, offer)
        self._clean_downloads(kind, keep=offer)
        if decision.action in ("up-to-date", "none"):
            return self.report("idle", kind, version=decision.current, message=decision.reason or "up to date",
                               persist=False)
        if decision.action != "update":
            raise OtaError(f"ota-{decision.action}", decision.reason)
        assert offer is not None
        slot = self.store.inactive_slot(kind)
        part = self._part_path(offer)
        self._check_disk(offer, part)
        self.report("downloading", kind, version=offer.version, progress=0.0)
        makedirs(self.fs, self.store.downloads)
        self._last_progress = -1
        download(self.fs, client.url(offer), part, offer.length, config=self.config.fetch,
                 progress=lambda have, total: self._progress(kind, offer.version, have, total))
        self.on_step("downloaded")
        try:
            verify_target(offer, part)
        except OtaError:
            self.fs.unlink(part)  # corrupt bytes are never resumed from
            raise
        self.on_step("verified")
        # The signed offer said which firmware it needs; the bundle's own manifest has the last word.
        check_firmware(read_archive_manifest(part), self.config.voxhome_version)
        self.report("installing", kind, version=offer.version)
        slot_dir = self.store.slot_dir(kind, slot)
        forget_stamp(self.fs, slot_dir)
        remove_tree(self.fs, slot_dir)
        self.on_step("slot-cleared")
        manifest = unpack(self.fs, part, slot_dir)
        if manifest.kind != kind or manifest.version != offer.version:
            raise OtaError("ota-bad-bundle", f"bundle says {manifest.kind} {manifest.version}, "
                           f"the signed metadata says {kind} {offer.version}")
        self.on_step("unpacked")
        try:
            summary = self.health(kind, slot_dir)
        except OtaError:
            self.store.reject(kind, offer.version)
            self._drop(part)
            raise
        self.on_step("health-ok")
        self.store.switch(kind, slot, offer.version, self.config.trial_attempts)
        self.on_step("switched")
        self._drop(part)
        self.on_step("cleaned")
        return self.report("pending", kind, version=offer.version,
                           message=f"on trial ({self.config.trial_attempts} attempts): {summary}")

    def _part_path(self, offer: Offer) -> Path:
        digest = next(iter(offer.target.hashes.values()))
        return self.store.downloads / f"{offer.kind}-{digest[:16]}.part"

    def _clean_downloads(self, kind: str, keep: Offer | None) -> None:
        """Drop partial downloads of bundles no longer offered (or already installed)."""
        if not self.store.downloads.is_dir():
            return
        active = self.store.load().kind(kind).version
        wanted = self._part_path(keep) if keep is not None and keep.version != active else None
        for part in self.store.downloads.glob(f"{kind}-*.part"):
            if part != wanted:
                self._drop(part)

    def _drop(self, path: Path) -> None:
        if path.exists():
            self.fs.unlink(path)
            self.fs.fsync_dir(path.parent)

    def _check_disk(self, offer: Offer, part: Path) -> None:
        have = part.stat().st_size if part.exists() else 0
        need = (offer.length - have) + offer.length + self.config.disk_margin_bytes
        free = disk_free(self.store)
        if free < need:
            raise OtaError("ota-disk-full", f"{offer.kind} {offer.version} needs {need >> 20} MiB free, "
                           f"{free >> 20} MiB available")

    def _progress(self, kind: str, version: str, have: int, total: int) -> None:
        step = int(10 * have / max(total, 1))
        if step != self._last_progress:
            self._last_progress = step
            self.report("downloading", kind, version=version, progress=have / max(total, 1), persist=False)

    # -- proving -------------------------------------------------------------------------------

    def boot(self) -> list[dict[str, Any]]:
        """At each service start: spend a trial attempt, or roll back a model whose attempts ran out."""
        self.store.recover()
        out = []
        for kind in self.installed_kinds():
            outcome, state = self.store.boot(kind)
            if outcome == "rolled-back":
                out.append(self.report("rolled-back", kind, version=state.version, code="ota-trial-failed",
                                       message="trial attempts ran out; back on the previous model"))
            elif outcome == "pending" and state.trial is not None:
                out.append(self.report("pending", kind, version=state.version,
                                       message=f"on trial, {state.trial.attempts_left} attempts left"))
        return out

    def confirm(self, kind: str) -> dict[str, Any]:
        """After a stable period: re-verify and health-check the active model, then mark it good."""
        state = self.store.load().kind(kind)
        if state.trial is None:
            return self.report("success", kind, version=state.version, message="already good", persist=False)
        try:
            path, _manifest = self.store.load_active(kind, firmware=self.config.voxhome_version)
            self.health(kind, path)
        except OtaError as err:
            back = self.store.rollback(kind, reason=err.message)
            return self.report("rolled-back", kind, version=back.version, code=err.code, message=err.message)
        good = self.store.mark_good(kind)
        return self.report("success", kind, version=good.version, message=f"marked good; floor {good.floor}")

    def rollback(self, kind: str) -> dict[str, Any]:
        back = self.store.rollback(kind, reason="requested")
        return self.report("rolled-back", kind, version=back.version, code="ota-rollback-requested",
                           message="rolled back on request")

    def run(self, stop: threading.Event, wake: threading.Event, *, interval_s: float, stable_s: float) -> None:
        """Service mode: check every `interval_s` or when notified; confirm a trial after `stable_s`.

        The voice service calls `boot()` (or `SlotStore.boot`) each time it loads models, so a
        model that crash-loops the service spends its attempts and is rolled back there.
        """
        trial_seen: dict[str, float] = {}
        while not stop.is_set():
            state = self.store.load()
            now = time.monotonic()
            on_trial = [k for k in self.installed_kinds() if state.kind(k).trial is not None]
            for kind in on_trial:
                if now - trial_seen.setdefault(kind, now) >= stable_s:
                    self.confirm(kind)
                    trial_seen.pop(kind, None)
            if not any(self.store.load().kind(k).trial is not None for k in self.installed_kinds()):
                try:
                    self.apply()
                except VoxError as err:
                    self.report("failure", None, code=err.code, message=err.message)
            waiting = any(self.store.load().kind(k).trial is not None for k in self.installed_kinds())
            wake.wait(max(0.5, min(stable_s, interval_s) if waiting else interval_s))
            wake.clear()


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode()
