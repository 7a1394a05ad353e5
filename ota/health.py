"""Pre-switch health check: prove a new bundle in a separate process, with a timeout.

A model that crashes the runtime, hangs, or loads but answers wrong must not take the agent (or
the speaker) down with it, so the check runs as `python -m ota.health KIND DIR` and only its exit
status and last line come back. Checkers are registered per kind; a kind whose model runner
can run golden audio registers that, every other kind gets `check_loads` (verify every file,
then load every ONNX/TFLite model with its runtime).
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from device.errors import ModelError, OtaError, VoxError
from models.manifest import BundleManifest, verify_bundle

_LOG = logging.getLogger(__name__)
Checker = Callable[[Path, BundleManifest], str]
"""Runs the bundle at `path`; returns a one-line summary or raises VoxError."""

# kind → "module:function": the kind's real runner on its golden audio. Other kinds (vad,
# prompts) get DEFAULT_CHECKER until a golden-audio check is written for them.
CHECKERS: dict[str, str] = {"wake": "ota.health:check_wake", "asr": "ota.health:check_asr"}
DEFAULT_CHECKER = "ota.health:check_loads"


def check_loads(path: Path, manifest: BundleManifest) -> str:
    """Every model file loads with its runtime (no golden-audio run for this kind yet)."""
    loaded = 0
    for entry in manifest.files:
        file = path / entry.path
        if file.suffix == ".onnx":
            from models.onnx import open_session

            open_session(file)
            loaded += 1
        elif file.suffix == ".tflite":
            from models.tflite import open_interpreter

            open_interpreter(file)
            loaded += 1
    return f"{manifest.kind} {manifest.version}: {len(manifest.files)} files verified, {loaded} models loaded"


def check_wake(path: Path, manifest: BundleManifest) -> str:
    """Run the wake runner over each golden clip: `expected` is the word that must fire, '' for none.

    The model is `metadata.model` if given, else the bundle's microWakeWord .json (or its only
    .tflite/.onnx); one second of silence follows each clip so a late detection still counts.
    """
    import numpy as np

    from device.settings import WakeWordSettings
    from hal.audio import float_to_pcm16
    from hal.source import read_audio_file
    from models.wake import WakeWordDetector, resolve_word

    if not manifest.golden:
        raise ModelError("model-bad-manifest", f"wake bundle {manifest.name} has no golden audio to prove it")
    candidates = [f.path for f in manifest.files if f.path.endswith(".json")] or [
        f.path for f in manifest.files if f.path.endswith((".tflite", ".onnx"))
    ]
    model = str(manifest.metadata.get("model") or (candidates[0] if len(candidates) == 1 else ""))
    if not model:
        raise ModelError("model-bad-manifest", f"wake bundle {manifest.name}: set metadata.model (found {candidates})")
    detector = WakeWordDetector([resolve_word(WakeWordSettings(model=str(path / model)))])
    try:
        for case in manifest.golden:
            audio = np.concatenate([read_audio_file(path / case.audio), np.zeros(16000, dtype=np.float32)])
            detector.reset()
            heard = {d.word for d in detector.process_streaming(float_to_pcm16(audio), 0)}
            if case.expected and case.expected not in heard:
                raise ModelError("model-golden", f"{case.audio}: expected {case.expected!r}, heard {sorted(heard) or 'nothing'}")
            if not case.expected and heard:
                raise ModelError("model-golden", f"{case.audio}: expected no wake word, heard {sorted(heard)}")
    finally:
        detector.close()
    return f"wake {manifest.version}: {len(manifest.golden)} golden clip(s) as expected"


def check_asr(path: Path, manifest: BundleManifest) -> str:
    """Transcribe each golden clip with the speech runner; the normalized text must match."""
    from hal.source import read_audio_file
    from models.asr.factory import normalize
    from models.asr.runner import WhisperOnnx

    if not manifest.golden:
        raise ModelError("model-bad-manifest", f"asr bundle {manifest.name} has no golden audio to prove it")
    runner = WhisperOnnx.load(path)
    try:
        for case in manifest.golden:
            text, _details = runner.transcribe(read_audio_file(path / case.audio))
            if normalize(text) != normalize(case.expected):
                raise ModelError("model-golden", f"{case.audio}: expected {case.expected!r}, heard {text!r}")
    finally:
        runner.close()
    return f"asr {manifest.version}: {len(manifest.golden)} golden clip(s) transcribed as expected"


def resolve_checker(kind: str) -> Checker:
    module_name, _, func = CHECKERS.get(kind, DEFAULT_CHECKER).partition(":")
    checker: Checker = getattr(importlib.import_module(module_name), func)
    return checker


def check_in_process(kind: str, path: Path) -> str:
    manifest = verify_bundle(path)
    if manifest.kind != kind:
        raise ModelError("model-bad-manifest", f"{path} is a {manifest.kind} bundle, not {kind}")
    return resolve_checker(kind)(path, manifest)


def run_health_check(kind: str, path: Path, *, timeout_s: float = 60.0) -> str:
    """Run the checker in a child process; raise OtaError('ota-health') with its reason on failure."""
    command = [sys.executable, "-m", "ota.health", kind, str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise OtaError("ota-health", f"health check of {kind} bundle timed out after {timeout_s:g} s") from None
    lines = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()
    if done.returncode != 0:
        raise OtaError("ota-health", f"health check of {kind} bundle failed: {lines[-1]}")
    return lines[-1]


def main(argv: list[str]) -> int:
    """Child-process entry: exit 0 and print a summary, or exit 1 and print the reason."""
    if len(argv) != 2:
        sys.stderr.write("usage: python -m ota.health KIND BUNDLE_DIR\n")
        return 2
    try:
        summary = check_in_process(argv[0], Path(argv[1]))
    except VoxError as err:
        sys.stdout.write(f"[{err.code}] {err.message}\n")
        return 1
    except Exception as err:  # noqa: BLE001 — a crashing model is exactly what this process absorbs
        sys.stdout.write(f"[model-crash] {type(err).__name__}: {err}\n")
        return 1
    sys.stdout.write(summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
