"""`voxhome models build wake [--calibration FILE] [--out DIR]`: the wake-word bundle.

The bundle is the packaged microWakeWord models (pymicro-wakeword's .tflite files) with their
JSON manifests, whose `micro.probability_cutoff` is the cutoff calibrated on our own data by
`voxhome bench wake --calibrate` (the calibration file, provenance included, travels inside the
bundle as calibration.json). The device already reads bundles of this shape: the OTA slot's
`<word>.json` replaces the built-in word (device/appliance.py `build_frontend`), and the runner
takes the cutoff from it (models/wake.py `_read_micro_manifest`), so an OTA update of this bundle
changes the cutoffs without a firmware change. A word without a calibration keeps its packaged
cutoff. Cached under $XDG_CACHE_HOME/voxhome/bundles keyed by the models and the calibration.
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
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import ModelError
from models.manifest import Golden, deliver_bundle, sha256_file, verify_bundle, write_manifest
from models.wake import MICRO_BUILTINS, micro_models_dir

BUILDER_VERSION = "1"
_LOGGER = logging.getLogger(__name__)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxhome" / "bundles"


def read_calibration(path: Path) -> dict[str, Any]:
    """The calibration file: {"words": {word: {"cutoff": float, ...}}, ...}; errors name the field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError("model-missing", f"calibration file {path} does not exist (voxhome bench wake --calibrate)") from None
    except (OSError, ValueError) as err:
        raise ModelError("model-bad-manifest", f"{path} is not readable JSON: {err}") from None
    words = data.get("words") if isinstance(data, dict) else None
    if not isinstance(words, dict):
        raise ModelError("model-bad-manifest", f"{path}: 'words' missing or not an object")
    for word, entry in words.items():
        if word not in MICRO_BUILTINS:
            raise ModelError("model-bad-manifest", f"{path}: unknown wake word {word!r} (known: {', '.join(MICRO_BUILTINS)})")
        cutoff = entry.get("cutoff") if isinstance(entry, dict) else None
        if not isinstance(cutoff, float) or not 0.0 < cutoff < 1.0:
            raise ModelError("model-bad-manifest", f"{path}: words.{word}.cutoff must be a number between 0 and 1")
    return data


def cutoffs(calibration: dict[str, Any] | None) -> dict[str, float]:
    words = (calibration or {}).get("words", {})
    return {w: float(e["cutoff"]) for w, e in words.items()}


def _heads(calibration: dict[str, Any] | None) -> dict[str, Path]:
    """word → the trained verifier head (models/wake_head.py) its two-stage rule names, as
    `voxhome bench wake --calibrate` recorded it; a missing file is a clear error."""
    heads = {w: Path(p) for w, p in (calibration or {}).get("heads", {}).items()}
    for word, path in heads.items():
        if not path.is_file():
            raise ModelError("model-missing", f"the verifier head of {word!r} ({path}) is gone: run voxhome bench wake --calibrate again")
    return heads


def build_key(calibration: dict[str, Any] | None) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION}|{json.dumps(calibration, sort_keys=True)}".encode())
    for word, head in sorted(_heads(calibration).items()):
        digest.update(f"|head:{word}:{sha256_file(head)}".encode())
    for word in MICRO_BUILTINS:
        digest.update(f"|{word}:{sha256_file(micro_models_dir() / f'{word}.tflite')}".encode())
    return digest.hexdigest()


def build_bundle(out: Path, calibration: dict[str, Any] | None, version: str) -> None:
    heads = _heads(calibration)
    source = micro_models_dir()
    chosen = cutoffs(calibration)
    for word in MICRO_BUILTINS:
        config = json.loads((source / f"{word}.json").read_text(encoding="utf-8"))
        shutil.copyfile(source / config["model"], out / config["model"])
        if word in chosen:
            config["micro"]["probability_cutoff"] = chosen[word]
            config["voxhome_calibration"] = calibration["words"][word] if calibration else {}
        rule = (calibration or {}).get("two_stage", {}).get(word)
        if rule is not None:
            # The second stage's rule travels with the word, so an OTA update can change it.
            config["voxhome_confirm"] = _with_references(out, word, rule)
            head = heads.get(word)
            if head is not None and rule.get("model") == head.name:
                # A trained head sits beside the word's manifest, where the rule names it.
                shutil.copyfile(head, out / head.name)
        (out / f"{word}.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if calibration is not None:
        (out / "calibration.json").write_text(json.dumps(calibration, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    golden = _write_golden(out)
    write_manifest(
        out, name="wake-micro", kind="wake", version=version, runtime="tflite", golden=golden,
        metadata={"models": [f"{w}.json" for w in MICRO_BUILTINS], "cutoffs": {w: chosen.get(w) for w in MICRO_BUILTINS},
                  "calibrated": sorted(chosen), "two_stage": sorted((calibration or {}).get("two_stage", {}))},
    )


def _with_references(out: Path, word: str, rule: dict[str, Any]) -> dict[str, Any]:
    """A phrase-matching confirmer ('ewn:<phrase>') ships its reference embeddings in the bundle
    (the ones calibration measured), so the device needs no TTS to enrol them."""
    model = str(rule.get("model", ""))
    if not model.startswith("ewn:"):
        return rule
    from models.wake_phrase_enrol import enrol

    name = f"{word}.ewn.npy"
    np.save(out / name, np.asarray(enrol(model[4:]).references, np.float32))
    return {**rule, "references": name}


def _write_golden(out: Path) -> tuple[Golden, ...]:
    """Per word, its phrase said by the first tuning voice this bundle hears it from (a health
    check must pass on a good bundle, so the clip is chosen by the bundle's own models; it proves
    the model loads and fires, it measures nothing), plus quiet noise on which nothing may fire."""
    import wave

    from device.bench.voices import TUNING_VOICES, available, synthesize
    from device.bench.wake.nearmiss import PHRASES
    from device.settings import WakeWordSettings
    from hal.audio import float_to_pcm16
    from models.wake import WakeWordDetector, resolve_word

    (out / "golden").mkdir(exist_ok=True)
    pad = np.zeros(8000, np.float32)
    clips: list[tuple[str, np.ndarray, str]] = [
        ("golden/noise.wav", (0.01 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), "")]
    detector = WakeWordDetector([resolve_word(WakeWordSettings(model=str(out / f"{w}.json"))) for w in MICRO_BUILTINS])
    try:
        for word in MICRO_BUILTINS:
            for voice in (v for v in TUNING_VOICES if available(v)):
                audio = np.concatenate([pad, synthesize(PHRASES[word].text, voice), pad, pad])
                detector.reset()
                if {d.word for d in detector.process_streaming(float_to_pcm16(audio), 0)} == {word}:
                    clips.append((f"golden/{word}.wav", audio, word))
                    break
            else:
                _LOGGER.warning("no tuning voice fires %s at its cutoff: the bundle has no golden clip for it", word)
    finally:
        detector.close()
    for name, audio, _ in clips:
        with wave.open(str(out / name), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(16000)
            fh.writeframes(float_to_pcm16(audio))
    return tuple(Golden(name, expected) for name, _, expected in clips)


def ensure_wake_bundle(calibration: dict[str, Any] | None, *, root: Path | None = None, version: str = "1.0.0") -> Path:
    """The bundle for this calibration (and its trained heads), built first if the cache has no complete one."""
    root = Path(root) if root else cache_root()
    target = root / f"wake-micro-{build_key(calibration)[:16]}"
    if target.is_dir():
        try:
            verify_bundle(target, hashes=False)
            return target
        except ModelError:
            shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    work.chmod(0o755)
    try:
        build_bundle(work, calibration, version)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calibration", type=Path,
                        help="cutoffs from `voxhome bench wake --calibrate` (default: the last one it wrote, if any)")
    parser.add_argument("--version", default="1.0.0", help="bundle version (dotted numbers)")
    parser.add_argument("--out", type=Path, help="also copy the bundle here")


def default_calibration() -> Path:
    from device.bench.conditions import eval_cache_dir

    return eval_cache_dir() / "wake" / "calibration.json"


def run(args: argparse.Namespace) -> int:
    from ota.slots import parse_version

    parse_version(args.version)
    path = args.calibration or default_calibration()
    calibration = read_calibration(path) if args.calibration or path.is_file() else None
    bundle, manifest = deliver_bundle(ensure_wake_bundle(calibration, version=args.version), args.out)
    sys.stdout.write(json.dumps({"bundle": str(bundle), "kind": manifest.kind, "version": manifest.version,
                                 "cutoffs": manifest.metadata.get("cutoffs"),
                                 "calibration": str(path) if calibration else None}) + "\n")
    return 0
