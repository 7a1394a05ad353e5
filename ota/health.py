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

# kind → "module:function": the kind's real runner on its golden audio (prompts: every prompt
# the device says decodes to real sound). Other kinds get DEFAULT_CHECKER: load every model.
CHECKERS: dict[str, str] = {
    "wake": "ota.health:check_wake",
    "vad": "ota.health:check_vad",
    "asr": "ota.health:check_asr",
    "prompts": "ota.health:check_prompts",
    "tts": "ota.health:check_tts",
}
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
    .tflite/.onnx); a bundle of several words lists them all in `metadata.models`, listened for
    at once as the device does. One second of silence follows each clip so a late detection
    still counts.
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
    listed = manifest.metadata.get("models")
    model = str(manifest.metadata.get("model") or (candidates[0] if len(candidates) == 1 else ""))
    models = [str(m) for m in listed] if isinstance(listed, list) and listed else [model] if model else []
    if not models:
        raise ModelError("model-bad-manifest", f"wake bundle {manifest.name}: set metadata.model (found {candidates})")
    detector = WakeWordDetector([resolve_word(WakeWordSettings(model=str(path / m))) for m in models])
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


VAD_EXPECTED = ("speech", "silence")


def check_vad(path: Path, manifest: BundleManifest) -> str:
    """A VAD bundle carrying an ONNX model must prove it: each golden clip's `expected` is 'speech'
    (some 32 ms window ≥ 0.5) or 'silence' (none is), with at least one of each. A bundle with
    no ONNX model (data files only) is checked like any other kind: every file verified."""
    import numpy as np

    from hal.source import read_audio_file
    from models.vad import SileroVad

    summary = check_loads(path, manifest)
    models = [f.path for f in manifest.files if f.path.endswith(".onnx")]
    if not models:
        return summary
    if len(models) != 1:
        raise ModelError("model-bad-manifest", f"vad bundle {manifest.name} has {len(models)} ONNX models, not one")
    expected = sorted({case.expected for case in manifest.golden})
    if expected != sorted(VAD_EXPECTED):
        raise ModelError("model-bad-manifest",
                         f"vad bundle {manifest.name} needs golden clips expecting 'speech' and 'silence' (has {expected})")
    vad = SileroVad(path / models[0])
    try:
        for case in manifest.golden:
            vad.reset()
            probs = vad.process_float(read_audio_file(path / case.audio).astype(np.float32))
            peak = max(probs, default=0.0)
            heard = "speech" if peak >= 0.5 else "silence"
            if heard != case.expected:
                raise ModelError("model-golden", f"{case.audio}: expected {case.expected}, heard {heard} (peak {peak:.2f})")
    finally:
        vad.close()
    return f"vad {manifest.version}: {len(manifest.golden)} golden clip(s) as expected"


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


def check_prompts(path: Path, manifest: BundleManifest) -> str:
    """Every prompt the device can say is in the bundle and decodes (opuslib) to audible sound.

    A missing or broken prompt would only fall back to a tone on the device; an update that
    silently turns "Are you sure?" into a beep is still a bad update, so it is refused here.
    """
    import numpy as np

    from device.voice.prompts import NAMES
    from hal.opus import read_ogg_opus

    files = {f.path for f in manifest.files}
    missing = [name for name in NAMES if f"{name}.opus" not in files]
    if missing:
        raise ModelError("model-golden", f"prompt bundle lacks {', '.join(missing)}")
    seconds = 0.0
    for name in NAMES:
        try:
            audio = read_ogg_opus(path / f"{name}.opus")
        except VoxError as err:
            raise ModelError("model-golden", f"{name}.opus: {err.message}") from None
        duration = len(audio) / 16000
        rms = float(np.sqrt(np.mean(np.square(audio)))) if len(audio) else 0.0
        if not (0.05 <= duration <= 15.0) or not np.isfinite(audio).all() or rms < 1e-3:
            raise ModelError("model-golden", f"{name}.opus: {duration:.2f} s, rms {rms:.4f}: not a usable prompt")
        seconds += duration
    return f"prompts {manifest.version}: {len(NAMES)} prompts decode ({seconds:.1f} s of sound)"


def _cached_asr_bundle() -> Path | None:
    """The speech bundle already built on this machine (never built here: a check must be quick)."""
    from models.asr.factory import cache_root

    found = sorted(cache_root().glob("asr-*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def check_tts(path: Path, manifest: BundleManifest) -> str:
    """The voice speaks its golden sentence: audible, of a plausible length for its words, and,
    when a speech bundle is on the machine, transcribed back by Whisper to (nearly) those words."""
    import numpy as np

    from device.voice.level import loudness_db, trim_silence
    from hal.audio import resample
    from models.asr.factory import normalize
    from models.tts.factory import load_runner

    text = manifest.metadata.get("golden_text")
    if not isinstance(text, str) or not text.strip():
        raise ModelError("model-bad-manifest", f"voice bundle {manifest.name} has no metadata.golden_text to prove it")
    runner = load_runner(path, manifest=manifest)
    try:
        raw = runner.synthesize(text)
        rate = runner.sample_rate
    finally:
        runner.close()
    if not np.isfinite(raw).all() or float(np.max(np.abs(raw), initial=0.0)) > 4.0:
        raise ModelError("model-golden", "the voice produced non-finite or wildly clipped samples")
    audio = trim_silence(resample(raw, rate))
    seconds = len(audio) / 16000
    words = len(text.split())
    level = loudness_db(audio)
    # 0.12 s a word is faster than any speaker; 0.8 s a word (plus a breath) slower than any.
    if not 0.12 * words <= seconds <= 0.8 * words + 0.5 or level < -45.0:
        raise ModelError("model-golden", f"{text!r} came out as {seconds:.2f} s at {level:.1f} dBFS: not speech")
    heard = ""
    asr = _cached_asr_bundle()
    if asr is not None:
        from models.asr.runner import WhisperOnnx

        recognizer = WhisperOnnx.load(asr)
        try:
            transcript, _details = recognizer.transcribe(audio)
        finally:
            recognizer.close()
        want, got = normalize(text).split(), normalize(transcript).split()
        missed = len(set(want) - set(got))
        if missed > len(want) // 4:
            raise ModelError("model-golden", f"the voice said {text!r}, the recognizer heard {transcript!r}")
        heard = f", heard back as {transcript.strip()!r}"
    return f"tts {manifest.version}: {text!r} spoken in {seconds:.2f} s at {level:.1f} dBFS{heard}"


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
