"""Model bundles: a directory of files plus `manifest.json` naming each with its size and sha256.

The factory writes bundles, OTA ships and verifies them, the runners load them. A bundle that
doesn't verify is never loaded: the error names the file that is missing, short or altered.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.errors import ModelError

MANIFEST_NAME = "manifest.json"
BUNDLE_KINDS = ("wake", "vad", "asr", "prompts", "tts")
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Golden:
    """A health-check case: run the model on `audio`, expect `expected` (text or wake word)."""

    audio: str
    expected: str


@dataclass(frozen=True, slots=True)
class BundleManifest:
    name: str
    kind: str
    version: str
    files: tuple[FileEntry, ...]
    runtime: str = "onnxruntime"
    """What runs it: 'onnxruntime', 'tflite', 'opus'."""
    min_voxhome: str = "0.1.0"
    golden: tuple[Golden, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "runtime": self.runtime,
            "min_voxhome": self.min_voxhome,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "golden": [{"audio": g.audio, "expected": g.expected} for g in self.golden],
            "metadata": self.metadata,
        }

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise ModelError("model-missing-file", f"bundle {self.name} has no file {path}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(
    bundle_dir: Path,
    *,
    name: str,
    kind: str,
    version: str,
    runtime: str = "onnxruntime",
    min_voxhome: str = "0.1.0",
    golden: tuple[Golden, ...] = (),
    metadata: dict[str, Any] | None = None,
) -> BundleManifest:
    """Hash every file under `bundle_dir` (except the manifest) and write the manifest last.

    Written last and by rename, so a directory with a manifest is a complete bundle.
    """
    if kind not in BUNDLE_KINDS:
        raise ModelError("model-bad-manifest", f"bundle kind must be one of {BUNDLE_KINDS}, not {kind!r}")
    entries = []
    for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle_dir).as_posix()
        if rel == MANIFEST_NAME or rel.endswith(".tmp"):
            continue
        entries.append(FileEntry(rel, path.stat().st_size, sha256_file(path)))
    for case in golden:
        if not any(e.path == case.audio for e in entries):
            raise ModelError("model-bad-manifest", f"golden audio {case.audio} is not in the bundle")
    manifest = BundleManifest(
        name=name, kind=kind, version=version, files=tuple(entries), runtime=runtime,
        min_voxhome=min_voxhome, golden=golden, metadata=dict(metadata or {}),
    )
    tmp = bundle_dir / (MANIFEST_NAME + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(manifest.to_json(), fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, bundle_dir / MANIFEST_NAME)
    return manifest


def parse_manifest(data: Any, *, source: str = MANIFEST_NAME) -> BundleManifest:
    """Validate a manifest's JSON; every problem names the field."""

    def need(obj: Any, key: str, kind: type, where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
            raise ModelError("model-bad-manifest", f"{source}: '{where}{key}' missing or not {kind.__name__}")
        return obj[key]

    need(data, "format", int, "")
    if data["format"] != FORMAT_VERSION:
        raise ModelError("model-bad-manifest", f"{source}: unsupported manifest format {data['format']}")
    kind = need(data, "kind", str, "")
    if kind not in BUNDLE_KINDS:
        raise ModelError("model-bad-manifest", f"{source}: unknown bundle kind {kind!r}")
    files = []
    for i, item in enumerate(need(data, "files", list, "")):
        where = f"files[{i}]."
        path = need(item, "path", str, where)
        if path.startswith("/") or ".." in Path(path).parts or path == MANIFEST_NAME:
            raise ModelError("model-bad-manifest", f"{source}: file path {path!r} escapes the bundle")
        size = need(item, "size", int, where)
        digest = need(item, "sha256", str, where)
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ModelError("model-bad-manifest", f"{source}: {where}sha256 is not a sha256 hex digest")
        files.append(FileEntry(path, size, digest))
    golden = tuple(
        Golden(need(g, "audio", str, f"golden[{i}]."), need(g, "expected", str, f"golden[{i}]."))
        for i, g in enumerate(data.get("golden", []))
    )
    return BundleManifest(
        name=need(data, "name", str, ""),
        kind=kind,
        version=need(data, "version", str, ""),
        files=tuple(files),
        runtime=need(data, "runtime", str, ""),
        min_voxhome=need(data, "min_voxhome", str, ""),
        golden=golden,
        metadata=data.get("metadata", {}) if isinstance(data.get("metadata", {}), dict) else {},
    )


def read_manifest(bundle_dir: Path) -> BundleManifest:
    path = Path(bundle_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError("model-missing-file", f"{path} does not exist (not a model bundle)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError("model-bad-manifest", f"{path} is not readable JSON: {err}") from None
    return parse_manifest(data, source=str(path))


def verify_bundle(bundle_dir: Path, *, hashes: bool = True) -> BundleManifest:
    """Check every listed file exists with its size (and sha256); raise naming the first bad one."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    for entry in manifest.files:
        path = bundle_dir / entry.path
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ModelError("model-missing-file", f"{path} is missing from bundle {manifest.name}") from None
        if size != entry.size:
            raise ModelError(
                "model-corrupt", f"{path} is {size} bytes, the manifest says {entry.size} (truncated or altered)"
            )
        if hashes and sha256_file(path) != entry.sha256:
            raise ModelError("model-corrupt", f"{path} does not match its sha256 in the manifest (corrupt or altered)")
    return manifest


def deliver_bundle(bundle_dir: Path, out: Path | None) -> tuple[Path, BundleManifest]:
    """What `voxhome models build … [--out DIR]` ends with: copy the (cached) bundle to `out` if
    asked (never over an existing path), then verify what is there and return it."""
    if out is not None:
        if out.exists():
            raise ModelError("model-build", f"{out} already exists")
        import shutil

        shutil.copytree(bundle_dir, out)
        bundle_dir = out
    return bundle_dir, verify_bundle(bundle_dir)
