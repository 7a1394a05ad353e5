"""A/B slots per model kind, and one state file that says which slot is live.

Layout under the OTA state directory::

    state.json              active slot, version, trial + attempts, version floor — for every kind
    slots/<kind>/a|b/       bundle directories (manifest.json written last)
    downloads/              partial downloads, kept for resume

The switch is one `write_atomic()` of state.json, so after a power cut the device is on the old
slot or the new one, never between. A new slot starts "on trial" with N attempts: each boot
while on trial spends one; `mark_good()` (after the health check and a stable period) ends the
trial and raises the version floor; when attempts run out the next boot rolls back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from device.errors import ModelError, OtaError
from models.manifest import MANIFEST_NAME, BundleManifest, verify_bundle
from ota.atomic import (
    FileSystem,
    clean_temps,
    makedirs,
    read_chunks,
    remove_tree,
    write_atomic,
    write_durable,
)
from ota.integrity import (
    Verified,
    begin_run,
    check_firmware,
    describe,
    forget_stamp,
    mark_clean_stop,
    parse_version,
    verify_slot,
    voxhome_version,
)

_LOG = logging.getLogger(__name__)
SLOTS = ("a", "b")
STATE_NAME = "state.json"
# The names fleet tools (hawkBit, Mender, RAUC) use for an update's progress.
STATUS_NAMES = ("idle", "checking", "downloading", "installing", "pending", "success", "failure", "rolled-back")


@dataclass(frozen=True, slots=True)
class Trial:
    previous: str
    """The slot to go back to."""
    attempts_left: int


@dataclass(frozen=True, slots=True)
class KindState:
    active: str
    version: str
    floor: str
    """No bundle below this version is ever installed (raised when a version is marked good)."""
    trial: Trial | None = None
    rejected: tuple[str, ...] = ()
    """Versions that failed their health check or were rolled back: not retried."""

    def to_json(self) -> dict[str, Any]:
        trial = None if self.trial is None else {"previous": self.trial.previous, "attempts_left": self.trial.attempts_left}
        return {"active": self.active, "version": self.version, "floor": self.floor, "trial": trial,
                "rejected": list(self.rejected)}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> KindState:
        trial = data.get("trial")
        active = str(data["active"])
        if active not in SLOTS:
            raise ValueError(f"bad slot {active!r}")
        return KindState(
            active=active, version=str(data["version"]), floor=str(data["floor"]),
            trial=None if trial is None else Trial(str(trial["previous"]), int(trial["attempts_left"])),
            rejected=tuple(str(v) for v in data.get("rejected", ())),
        )


@dataclass(frozen=True, slots=True)
class SlotState:
    kinds: Mapping[str, KindState] = field(default_factory=dict)

    def kind(self, kind: str) -> KindState:
        try:
            return self.kinds[kind]
        except KeyError:
            raise OtaError("ota-no-model", f"no {kind} model is installed (provision one first)") from None

    def with_kind(self, kind: str, state: KindState) -> SlotState:
        return SlotState({**self.kinds, kind: state})


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


class SlotStore:
    """The slot directories and state file under `root`; every write goes through `fs`."""

    def __init__(self, root: Path, fs: FileSystem | None = None) -> None:
        self.root = Path(root)
        self.fs = fs or FileSystem()

    @property
    def state_path(self) -> Path:
        return self.root / STATE_NAME

    def slot_dir(self, kind: str, slot: str) -> Path:
        return self.root / "slots" / kind / slot

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def load(self) -> SlotState:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return SlotState({k: KindState.from_json(v) for k, v in data["kinds"].items()})
        except FileNotFoundError:
            return SlotState()
        except (OSError, ValueError, KeyError, TypeError) as err:
            # write_atomic makes this impossible short of disk corruption; say so rather than guess.
            raise OtaError("ota-bad-state", f"{self.state_path} is unreadable: {err}") from None

    def save(self, state: SlotState) -> None:
        makedirs(self.fs, self.root)
        body = {"format": 1, "kinds": {k: v.to_json() for k, v in sorted(state.kinds.items())}}
        write_atomic(self.fs, self.state_path, json.dumps(body, indent=2, sort_keys=True).encode())

    def recover(self) -> None:
        """After a crash: drop half-written temp files (state.json itself is always whole)."""
        clean_temps(self.fs, self.root)

    # -- reading -------------------------------------------------------------------------------

    def active_dir(self, kind: str) -> Path:
        return self.slot_dir(kind, self.load().kind(kind).active)

    def load_active(self, kind: str, *, firmware: str | None = None) -> tuple[Path, BundleManifest]:
        """The active slot's directory and manifest, re-hashed in full; no fallback (the agent's
        confirm step: a trial that doesn't verify is rolled back there)."""
        path = self.active_dir(kind)
        try:
            verified = verify_slot(self.fs, path, kind=kind, firmware=firmware or voxhome_version(), full=True)
        except ModelError as err:
            raise OtaError("ota-active-corrupt", f"active {kind} slot {path} does not verify: {err.message}") from None
        return path, verified.manifest

    def open_verified(self, kind: str, *, full: bool = False, firmware: str | None = None) -> Verified:
        """What the service loads: the active slot, checked by its stamp (or in full when `full` or the
        stamp is stale); if it fails, the other slot, re-hashed in full, becomes active.

        The other slot is only taken when it holds a complete, verified bundle that is neither a
        rejected version nor newer than the active one (a newer one there is an install the agent
        has not proven yet). Neither slot usable: OtaError('ota-no-good-slot') naming both reasons.
        """
        firmware = firmware or voxhome_version()
        current = self.load().kind(kind)
        active = self.slot_dir(kind, current.active)
        try:
            return verify_slot(self.fs, active, kind=kind, firmware=firmware, full=full)
        except (ModelError, OtaError) as err:
            reason = describe(err)
        alt = other(current.active)
        _LOG.error("%s model %s in slot %s failed verification: %s; trying slot %s",
                   kind, current.version, current.active, reason, alt)
        try:
            verified = verify_slot(self.fs, self.slot_dir(kind, alt), kind=kind, firmware=firmware, full=True)
            version = verified.manifest.version
            if version in current.rejected:
                raise OtaError("ota-rejected", f"it holds {version}, which failed on this device before")
            if parse_version(version) > parse_version(current.version):
                raise OtaError("ota-unproven", f"it holds {version}, an install not yet proven by the agent")
        except (ModelError, OtaError) as err:
            raise OtaError("ota-no-good-slot", f"no usable installed {kind} model: slot {current.active}: {reason}; "
                           f"slot {alt}: {describe(err)}") from None
        # Not rejected: a damaged copy is not a bad version, so the agent may install it again.
        state = self.load()
        if state.kind(kind).active == current.active:
            self.save(state.with_kind(kind, replace(current, active=alt, version=version, trial=None)))
        _LOG.error("%s model: fell back from slot %s (%s) to slot %s (%s)", kind, current.active, current.version,
                   alt, version)
        return replace(verified, fallback_reason=reason)

    def begin_run(self) -> bool:
        """See `ota.integrity.begin_run`: False after an unclean shutdown (stamps dropped)."""
        return begin_run(self.fs, self.root)

    def mark_clean_stop(self) -> None:
        mark_clean_stop(self.fs, self.root)

    def inactive_slot(self, kind: str) -> str:
        """The slot an install may overwrite; none while a trial needs the previous slot to fall back on."""
        state = self.load().kind(kind)
        if state.trial is not None:
            raise OtaError("ota-trial-active", f"{kind} {state.version} is still on trial; confirm or roll back first")
        return other(state.active)

    # -- transitions ---------------------------------------------------------------------------

    def provision(self, kind: str, bundle_dir: Path, *, firmware: str | None = None) -> BundleManifest:
        """Factory install: copy a verified bundle into slot a and make it active and good."""
        manifest = verify_bundle(bundle_dir)
        if manifest.kind != kind:
            raise OtaError("ota-bad-bundle", f"{bundle_dir} is a {manifest.kind} bundle, not {kind}")
        check_firmware(manifest, firmware or voxhome_version())
        dest = self.slot_dir(kind, "a")
        forget_stamp(self.fs, dest)
        remove_tree(self.fs, dest)
        makedirs(self.fs, dest)
        for entry in (*manifest.files, None):
            rel = MANIFEST_NAME if entry is None else entry.path
            target = dest / rel
            makedirs(self.fs, target.parent)
            write_durable(self.fs, target, read_chunks(bundle_dir / rel))
            self.fs.fsync_dir(target.parent)
        state = self.load().with_kind(kind, KindState(active="a", version=manifest.version, floor=manifest.version))
        self.save(state)
        return manifest

    def switch(self, kind: str, slot: str, version: str, attempts: int) -> None:
        """The one rename that makes `slot` live, on trial with `attempts` boots to prove itself."""
        state = self.load()
        current = state.kind(kind)
        new = KindState(active=slot, version=version, floor=current.floor,
                        trial=Trial(previous=current.active, attempts_left=attempts), rejected=current.rejected)
        self.save(state.with_kind(kind, new))
        _LOG.info("%s: switched to slot %s (%s), on trial with %s attempts", kind, slot, version, attempts)

    def boot(self, kind: str) -> tuple[str, KindState]:
        """Called each time the models are loaded: spends a trial attempt, or rolls back when none are left.

        Returns ('success'|'pending'|'rolled-back', the state now in force).
        """
        state = self.load()
        current = state.kind(kind)
        if current.trial is None:
            return "success", current
        if current.trial.attempts_left <= 0:
            return "rolled-back", self.rollback(kind, reason="trial attempts ran out")
        spent = replace(current, trial=replace(current.trial, attempts_left=current.trial.attempts_left - 1))
        self.save(state.with_kind(kind, spent))
        return "pending", spent

    def mark_good(self, kind: str) -> KindState:
        """End the trial: the new version becomes the floor; the previous slot may now be reused."""
        state = self.load()
        current = state.kind(kind)
        if current.trial is None:
            return current
        floor = max(current.floor, current.version, key=parse_version)
        good = replace(current, trial=None, floor=floor)
        self.save(state.with_kind(kind, good))
        _LOG.info("%s: %s marked good (floor now %s)", kind, current.version, floor)
        return good

    def rollback(self, kind: str, *, reason: str) -> KindState:
        """Go back to the previous slot of a trial; the failed version is not retried."""
        state = self.load()
        current = state.kind(kind)
        if current.trial is None:
            raise OtaError("ota-no-rollback", f"{kind} {current.version} is not on trial; nothing to roll back to")
        previous = self.slot_dir(kind, current.trial.previous)
        try:
            old = verify_bundle(previous)
        except ModelError as err:
            raise OtaError("ota-no-rollback", f"previous {kind} slot does not verify: {err.message}") from None
        back = KindState(active=current.trial.previous, version=old.version, floor=current.floor, trial=None,
                         rejected=tuple(sorted({*current.rejected, current.version})))
        self.save(state.with_kind(kind, back))
        _LOG.warning("%s: rolled back from %s to %s (%s)", kind, current.version, old.version, reason)
        return back

    def reject(self, kind: str, version: str) -> None:
        state = self.load()
        current = state.kind(kind)
        if version not in current.rejected:
            self.save(state.with_kind(kind, replace(current, rejected=(*current.rejected, version))))


def disk_free(store: SlotStore) -> int:
    probe = store.root
    while not probe.exists():
        probe = probe.parent
    return store.fs.free_bytes(probe if probe.is_dir() else Path(os.sep))
