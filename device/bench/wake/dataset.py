"""The wake-word evaluation set: what each clip is, and its audio (rendered once, cached).

Positives: every wake phrase, alone and followed by a command, by every voice in every condition
(device/bench/conditions.py). Negatives: wake-free speech (licence texts, Python's own docstrings,
home commands; many voices and conditions), near-miss phrases of every word (nearmiss.py) alone
and inside sentences, and noise and music-like audio synthesized with numpy. Every clip belongs
to the TUNING or the HELD-OUT part: by its voice, and for voiceless audio by its seed (half
each, babble from the part's own voices), so nothing held out is ever seen by calibration.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from device.bench.conditions import (
    CONDITIONS,
    babble,
    condition,
    eval_cache_dir,
    limit,
    noise,
    read_pcm16,
    render,
    write_pcm16,
)
from device.bench.voices import (
    HELD_OUT_VOICES,
    SAMPLE_RATE,
    TUNING_VOICES,
    Voice,
    available,
    voice_by_label,
)
from device.bench.wake.nearmiss import PHRASES, near_misses
from device.errors import AudioError

Kind = Literal["wake", "speech", "near_miss", "noise", "music"]
Part = Literal["tuning", "held_out"]
SET_VERSION = 1
"""Bump when a clip recipe changes: clip ids (and so cached audio and traces) change with it."""

COMMANDS = (
    "turn on the kitchen light",
    "set the thermostat to twenty one degrees",
    "close the living room blinds",
    "what time is it",
    "turn off all the lights downstairs",
    "play some music in the bedroom",
    "lock the front door",
    "set a timer for ten minutes",
)
POSITIVE_CONDITIONS = tuple(CONDITIONS)
NEGATIVE_CONDITIONS = ("clean", "pink10", "babble10", "reverb", "clean", "fast")
"""Cycled over negative speech (clean twice: most of a day is quiet)."""
CARRIERS = ("I think {} was the answer", "{}", "she said {} and left", "{} is what they call it")
"""Near misses are said alone and inside sentences, as they would come up in conversation."""
NOISE_KINDS = ("pink", "brown", "white", "babble")
MUSIC_KINDS = ("chords", "melody", "drums", "mix")
NOISE_CLIP_S = 60.0
RENDER_TAIL_S = 1.6
"""render()'s default silence after the speech."""
WAKE_SLACK_S = 1.0
"""A positive counts if its word fires by the wake phrase's end plus this (the model's lag)."""


@dataclass(frozen=True, slots=True)
class Clip:
    kind: Kind
    part: Part
    text: str = ""
    """what is said (a command after the wake phrase, a sentence, or the near miss in a carrier)"""
    wake: str = ""
    """the wake phrase said first (positives)"""
    word: str = ""
    """the word a positive is for; the word a near miss imitates"""
    voice: str = ""
    """Voice.label ('' for noise and music)"""
    condition: str = "clean"
    seed: int = 0
    seconds: float = 0.0
    """noise and music: length"""

    @property
    def id(self) -> str:
        key = f"{SET_VERSION}|{self.kind}|{self.text}|{self.wake}|{self.voice}|{self.condition}|{self.seed}|{self.seconds}"
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "part": self.part, "text": self.text, "wake": self.wake,
                "word": self.word, "voice": self.voice, "condition": self.condition, "seed": self.seed}


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: np.ndarray
    """int16 mono 16 kHz"""
    wake_end_s: float
    """positives: where the wake phrase's audio ends; -1 for negatives"""
    path: Path
    """the cached WAV (what a second-stage verifier reads)"""


def wake_dir() -> Path:
    path = eval_cache_dir() / "wake"
    path.mkdir(parents=True, exist_ok=True)
    return path


def voices(part: Part, limit_to: int | None = None) -> list[Voice]:
    pool = [v for v in (TUNING_VOICES if part == "tuning" else HELD_OUT_VOICES) if available(v)]
    return pool[:limit_to] if limit_to else pool


# -- texts -----------------------------------------------------------------------------------


def _clean_sentences(text: str, min_words: int = 4, max_words: int = 30) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    out = []
    for part in re.split(r"[.;:!?]", text):
        words = re.sub(r"[^A-Za-z ,']", " ", part).split()
        if min_words <= len(words) <= max_words:
            out.append(" ".join(words))
    return out


def sentences() -> list[str]:
    """Wake-free sentences from text every machine has offline, interleaved by source."""
    sources: list[list[str]] = []
    licences = Path("/usr/share/common-licenses")
    for name in ("GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "Artistic"):
        if (licences / name).is_file():
            sources.append(_clean_sentences((licences / name).read_text(encoding="utf-8", errors="replace")))
    sources.append(_docstrings())
    sources.append(_home_commands())
    wake_words = {w for p in PHRASES.values() for w in p.text.split()} - {"hey", "okay"}
    pools = [[s for s in src if not (wake_words & set(s.lower().split()))] for src in sources if src]
    out: list[str] = []
    for i in range(max(len(p) for p in pools)):
        out += [p[i] for p in pools if i < len(p)]
    return out


def _docstrings() -> list[str]:
    import collections
    import email
    import http.client
    import json as json_module
    import logging
    import pathlib
    import subprocess
    import textwrap
    import unittest

    text = []
    for module in (collections, email, http.client, json_module, logging, pathlib, subprocess, textwrap, unittest):
        for name in dir(module):
            doc = getattr(getattr(module, name, None), "__doc__", None)
            if isinstance(doc, str):
                text.append(doc)
    return _clean_sentences(" . ".join(text))


def _home_commands() -> list[str]:
    cases = Path(__file__).resolve().parents[1] / "e2e_cases.json"
    try:
        # Only the e2e set's tuning cases: its held-out sentences stay unheard by any calibration.
        return [str(c["text"]) for c in json.loads(cases.read_text(encoding="utf-8")) if not c.get("held_out")]
    except (OSError, ValueError, KeyError, TypeError):
        return list(COMMANDS)


# -- the set ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetSize:
    speech_minutes: float = 120.0
    """wake-free speech per run, both parts together (near misses included)"""
    noise_minutes: float = 60.0
    """noise and music, both parts together"""
    voices_per_part: int | None = None
    """None: every installed voice"""
    conditions: tuple[str, ...] = POSITIVE_CONDITIONS


def positives(size: SetSize) -> list[Clip]:
    out = []
    for part in ("tuning", "held_out"):
        for v, voice in enumerate(voices(part, size.voices_per_part)):
            for w, (word, phrase) in enumerate(PHRASES.items()):
                for c, cond in enumerate(size.conditions):
                    seed = 7919 * v + 97 * w + c
                    command = COMMANDS[(v + w + c) % len(COMMANDS)]
                    out.append(Clip("wake", part, phrase.text, "", word, voice.label, cond, seed))
                    out.append(Clip("wake", part, command, phrase.text, word, voice.label, cond, seed))
    return out


SPEECH_S_PER_WORD = 0.34
"""Speaking time per word (measured over the voices: 0.34-0.36 s), to fill a duration budget
before rendering."""


def negatives(size: SetSize) -> list[Clip]:
    out: list[Clip] = []
    texts = sentences()
    misses = [(word, m) for word in PHRASES for m in near_misses(word)]
    for part in ("tuning", "held_out"):
        pool = voices(part, size.voices_per_part)
        if not pool:
            continue
        budget = size.speech_minutes * 30.0  # seconds for this part: half the total
        # A quarter of the speech time goes to near misses: every miss of every word, in turn.
        miss_budget, used, i = budget / 4, 0.0, 0
        while used < miss_budget and misses:
            word, miss = misses[i % len(misses)]
            carrier = CARRIERS[(i // len(misses)) % len(CARRIERS)]
            text = carrier.format(miss)
            voice = pool[i % len(pool)]
            cond = NEGATIVE_CONDITIONS[i % len(NEGATIVE_CONDITIONS)]
            out.append(Clip("near_miss", part, text, "", word, voice.label, cond, 31 * i + 1))
            used += 2.2 + SPEECH_S_PER_WORD * len(text.split())  # render() adds 0.6 s before, 1.6 s after
            i += 1
        used, i = 0.0, 0
        offset = 0 if part == "tuning" else len(texts) // 2  # different sentences for each part
        while used < budget - miss_budget:
            # Two or three sentences per clip: a paragraph, and fewer clips to render.
            text = ". ".join(texts[(offset + 3 * i + k) % len(texts)] for k in range(2 + i % 2))
            voice = pool[i % len(pool)]
            cond = NEGATIVE_CONDITIONS[(i // len(pool)) % len(NEGATIVE_CONDITIONS)]
            out.append(Clip("speech", part, text, "", "", voice.label, cond, 17 * i + 3))
            used += 2.2 + SPEECH_S_PER_WORD * len(text.split())
            i += 1
        count = max(1, round(size.noise_minutes * 30.0 / NOISE_CLIP_S))
        for n in range(count):
            kinds = NOISE_KINDS if n % 2 == 0 else MUSIC_KINDS
            kind = kinds[(n // 2) % len(kinds)]
            seed = 2 * n + (0 if part == "tuning" else 1)
            seconds = min(NOISE_CLIP_S, size.noise_minutes * 30.0)
            out.append(Clip("noise" if n % 2 == 0 else "music", part, kind, "", "", "", "clean", seed, seconds))
    return out


# -- audio -----------------------------------------------------------------------------------


def load(clip: Clip) -> Audio:
    """The clip's audio, rendered and cached on first use."""
    if clip.kind in ("noise", "music"):
        path = wake_dir() / "audio" / f"{clip.id}.wav"
        return Audio(_cached(path, lambda: _synth(clip)), -1.0, path)
    voice = voice_by_label(clip.voice)
    utterance = render(clip.text, voice, condition(clip.condition), clip.seed, wake=clip.wake)
    if clip.kind != "wake":
        return Audio(utterance.audio, -1.0, utterance.path)
    # The phrase alone is rendered as the 'command' after the lead: it ends where the tail begins.
    wake_end = utterance.wake_end if clip.wake else len(utterance.audio) / SAMPLE_RATE - RENDER_TAIL_S
    return Audio(utterance.audio, wake_end, utterance.path)


def _cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    if path.exists():
        return read_pcm16(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(make(), -1.0, 1.0) * 32767.0).astype("<i2")
    write_pcm16(path, pcm)
    return pcm


def _synth(clip: Clip) -> np.ndarray:
    rng = np.random.default_rng(clip.seed)
    level = float(rng.uniform(0.05, 0.3))  # room-level to loud
    if clip.kind == "noise":
        if clip.text == "babble":
            exclude = (HELD_OUT_VOICES if clip.part == "held_out" else TUNING_VOICES)[0]
            audio = babble(clip.seconds, clip.seed, exclude=exclude, talkers=int(rng.integers(3, 8)))
        elif clip.text == "brown":
            white = np.cumsum(rng.standard_normal(round(clip.seconds * SAMPLE_RATE)))
            audio = white - np.convolve(white, np.ones(801) / 801, mode="same")  # drift removed
            audio = (audio / (np.std(audio) + 1e-9)).astype(np.float32)
        else:
            audio = noise(clip.seconds, seed=clip.seed, color="pink" if clip.text == "pink" else "white")
        return limit(level * audio)
    return limit(level * 3 * music(clip.text, clip.seconds, rng))


def music(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Music-like audio: chord progressions, melodies with harmonics and vibrato, drum patterns."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, np.float64)
    bpm = float(rng.uniform(70, 160))
    beat = 60.0 / bpm
    root = float(rng.uniform(110, 220))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    if kind in ("chords", "mix"):
        for start in np.arange(0, seconds, 4 * beat):
            degree = int(rng.choice([0, 3, 4, 5]))
            span = (t >= start) & (t < start + 4 * beat)
            for step in (0, 2, 4):
                f = root * 2 ** (scale[(degree + step) % 7] / 12)
                env = np.exp(-(t[span] - start) * 0.8)
                out[span] += 0.3 * env * np.sin(2 * np.pi * f * t[span]) + 0.1 * env * np.sin(4 * np.pi * f * t[span])
    if kind in ("melody", "mix"):
        start = 0.0
        while start < seconds:
            length = beat * float(rng.choice([0.5, 1, 1, 2]))
            f = 2 * root * 2 ** (scale[int(rng.integers(8))] / 12)
            span = (t >= start) & (t < start + length)
            local = t[span] - start
            vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * local)
            env = np.minimum(1, local * 30) * np.exp(-local * 2)
            for h, a in ((1, 0.5), (2, 0.25), (3, 0.12)):
                out[span] += a * env * np.sin(2 * np.pi * h * f * vibrato * local)
            start += length
    if kind in ("drums", "mix"):
        hits = np.arange(0, seconds, beat / 2)
        for k, start in enumerate(hits):
            i = int(start * SAMPLE_RATE)
            m = min(n - i, 4000)
            local = np.arange(m) / SAMPLE_RATE
            if k % 4 == 0:  # kick
                out[i : i + m] += 0.8 * np.sin(2 * np.pi * (60 + 80 * np.exp(-local * 30)) * local) * np.exp(-local * 12)
            elif k % 4 == 2:  # snare
                out[i : i + m] += 0.4 * rng.standard_normal(m) * np.exp(-local * 25)
            else:  # hi-hat
                hat = rng.standard_normal(m)
                out[i : i + m] += 0.15 * np.diff(hat, prepend=0.0) * np.exp(-local * 60)
    peak = float(np.abs(out).max()) or 1.0
    return (out / peak).astype(np.float32)


def clip_seconds(audio: Audio) -> float:
    return len(audio.pcm) / SAMPLE_RATE


def iter_set(size: SetSize) -> Iterator[Clip]:
    yield from positives(size)
    yield from negatives(size)


def check_size(size: SetSize) -> None:
    for name in size.conditions:
        if name not in CONDITIONS:
            raise AudioError("bench-condition", f"unknown condition {name!r} (known: {', '.join(CONDITIONS)})")
