"""The prompt bundle: the device's fixed phrases and earcons, as Ogg Opus, under a manifest.

Rendered at build time (`voxhome models build prompts`) with a local TTS; a bundle of kind
"prompts" so OTA can replace it. At run time `PromptBundle.audio(name)` decodes a prompt; a
missing or corrupt prompt gives a generated tone instead, never silence and never an exception.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import AudioError, VoxError
from device.voice.tts import LocalTts
from hal.audio import SAMPLE_RATE
from hal.opus import read_ogg_opus, write_ogg_opus
from models.manifest import read_manifest, verify_bundle, write_manifest

_LOGGER = logging.getLogger(__name__)

BUNDLE_VERSION = "1"
BUNDLE_NAME = "voxhome-prompts"


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    text: str | None
    """What is spoken; None for an earcon (a generated sound)."""


PROMPTS: tuple[Prompt, ...] = (
    Prompt("wake", None),
    Prompt("done", None),
    Prompt("error", None),
    Prompt("timer", None),
    Prompt("ok", "Okay."),
    Prompt("confirm", "Are you sure?"),
    Prompt("cancelled", "Okay, I won't."),
    Prompt("offline", "I can't reach the internet right now."),
    Prompt("unknown_device", "I don't know a device called"),
    Prompt("not_understood", "Sorry, I didn't understand that."),
    Prompt("muted", "Microphone off."),
    Prompt("unmuted", "Microphone on."),
    Prompt("busy", "One moment, I'm still on the last one."),
    Prompt("unconfirmed", "I sent it, but the device didn't confirm."),
    Prompt("cloud_disabled", "I only answer home commands; online answers are turned off."),
    Prompt("cloud_error", "Sorry, my online assistant had a problem."),
    Prompt("cloud_auth", "My online assistant isn't set up. Please check the key."),
)
ALIASES = {
    # The assistant's and the cloud client's prompt ids → the recorded prompt that says it.
    "are_you_sure": "confirm",
    "cloud_unreachable": "offline",
    "cloud_dropped": "offline",
    "cloud_timeout": "offline",
    "cloud_busy": "cloud_error",
    "cloud_config": "cloud_auth",
    "cloud_expired": "cloud_error",
}
"""Prompt ids used by the assistant and the cloud client that share a recording."""
NAMES = tuple(p.name for p in PROMPTS)
_TEXTS = {p.name: p.text for p in PROMPTS}


def prompt_text(name: str) -> str | None:
    """What prompt `name` (or its alias) says; None for an earcon or an unknown name."""
    return _TEXTS.get(ALIASES.get(name, name))


def _tone(freqs: tuple[float, ...], note_ms: int, level: float = 0.3) -> np.ndarray:
    """Notes in sequence, each with a 5 ms attack and an exponential decay (no clicks)."""
    n = note_ms * SAMPLE_RATE // 1000
    t = np.arange(n) / SAMPLE_RATE
    env = np.exp(-t * 6.0 / (note_ms / 1000)) * np.minimum(1.0, t / 0.005)
    notes = [level * env * np.sin(2 * np.pi * f * t) for f in freqs]
    return np.concatenate(notes).astype(np.float32)


def earcon(name: str) -> np.ndarray:
    """The generated sound for an earcon, and the fallback for any prompt (per-name pitch)."""
    if name == "wake":
        return _tone((660.0, 880.0), 110)
    if name == "done":
        return _tone((880.0,), 160)
    if name == "error":
        return _tone((440.0, 330.0), 160)
    if name == "timer":
        return _tone((988.0, 784.0, 988.0, 784.0), 140)  # a ring, unlike any answer
    # A fallback tone whose pitch depends on the name, so two missing prompts still differ.
    pitch = 500.0 + int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 400
    return _tone((pitch,), 250)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxhome" / "bundles"


def build_key(engine: str) -> str:
    text = "|".join(f"{p.name}={p.text}" for p in PROMPTS)
    return hashlib.sha256(f"{BUNDLE_VERSION}|{engine}|{text}".encode()).hexdigest()[:16]


def build_prompt_bundle(out_dir: Path, engine: str = "espeak-ng") -> Path:
    """Render every prompt to `out_dir/<name>.opus` and write the manifest (last, atomically)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prompts-", dir=out_dir.parent))
    try:
        tts = LocalTts(engine)
        for prompt in PROMPTS:
            audio = earcon(prompt.name) if prompt.text is None else tts.speak(prompt.text).audio
            write_ogg_opus(tmp / f"{prompt.name}.opus", audio)
        write_manifest(
            tmp, name=BUNDLE_NAME, kind="prompts", version=BUNDLE_VERSION, runtime="opus",
            metadata={"engine": engine, "prompts": {p.name: p.text for p in PROMPTS}},
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _LOGGER.info("built prompt bundle %s with %s", out_dir, engine)
    return out_dir


def ensure_prompt_bundle(engine: str = "espeak-ng", root: Path | None = None) -> Path:
    """The cached prompt bundle for `engine`, built on first use."""
    bundle = (root or cache_root()) / f"prompts-{build_key(engine)}"
    if (bundle / "manifest.json").exists():
        try:
            verify_bundle(bundle)
            return bundle
        except VoxError as err:
            _LOGGER.warning("rebuilding prompt bundle %s: %s", bundle, err.message)
    return build_prompt_bundle(bundle, engine)


class PromptBundle:
    """Decoded prompts by name, with a tone for anything missing or unreadable."""

    def __init__(self, bundle_dir: Path | None, speak: Callable[[str], np.ndarray] | None = None) -> None:
        self._dir = Path(bundle_dir) if bundle_dir is not None else None
        self._speak = speak
        self._cache: dict[str, np.ndarray] = {}
        if self._dir is not None:
            try:
                read_manifest(self._dir)
            except VoxError as err:
                _LOGGER.warning("prompt bundle unusable, prompts will be tones: %s", err.message)
                self._dir = None

    def audio(self, name: str) -> np.ndarray:
        """float32 16 kHz mono for prompt `name`; a tone if it is missing or corrupt."""
        name = ALIASES.get(name, name)
        if name in self._cache:
            return self._cache[name]
        audio = self._load(name)
        self._cache[name] = audio
        return audio

    def _load(self, name: str) -> np.ndarray:
        if self._dir is None:
            return earcon(name)
        try:
            audio = read_ogg_opus(self._dir / f"{name}.opus")
            if len(audio) == 0 or not np.isfinite(audio).all():
                raise AudioError("audio-bad-opus", "prompt decodes to no audio")
            return audio
        except AudioError as err:
            _LOGGER.warning("prompt %s unusable (%s), playing a tone instead", name, err.message)
            return earcon(name)

    def unknown_device(self, device_name: str) -> np.ndarray:
        """"I don't know a device called …" + the name spoken by the local TTS."""
        prefix = self.audio("unknown_device")
        if self._speak is None:
            return prefix
        try:
            name = self._speak(device_name)
        except AudioError as err:
            _LOGGER.warning("can't speak the device name: %s", err.message)
            return prefix
        gap = np.zeros(SAMPLE_RATE // 20, np.float32)
        return np.concatenate([prefix, gap, name]).astype(np.float32)
