"""Enrol a wake phrase from its text: TTS renderings → reference embeddings, cached by phrase.

`voxhome models build wake-phrase "hey computer"` does it ahead of time; otherwise the service
does it at start-up for each `[[wake.words]] phrase = ...` (a few seconds the first time, then a
cache read). The phrase is spoken by the team's TUNING voices (device/bench/voices.py) at two
speaking rates; each rendering is trimmed, placed in the 1.5 s window at two positions (the
runtime hop sees a phrase anywhere in its window) and embedded clean and with pink noise at
15 dB, so a room's noise floor does not push the speaker's phrase away from every reference.
The phrase's near misses, generated from its text (models/wake_phrase_nearmiss.py: "computer",
"hey compuder"), are enrolled too, by the same voices at one rate and clean: the runtime wakes
only on a window nearer the phrase than its near misses (models/wake_phrase.py DEFAULT_MARGIN).
Held-out voices never enrol: they measure it (`voxhome bench wake-phrase`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.errors import ModelError
from device.events import SAMPLE_RATE
from models.manifest import sha256_file
from models.wake_phrase import HOP_S, WINDOW, PhraseEmbedder, model_path

ENROL_VERSION = "2"
"""Bump when the recipe changes: cached references are keyed by it."""
SPEEDS = (1.0, 1.3)
GAPS_S = (0.1, 0.1 + HOP_S / 2)
"""Silence after the phrase inside the window: half a hop apart, so a runtime window is never
more than a quarter hop from a reference's placement."""
NOISE_SNR_DB = 15.0
MIN_SPEECH_S = 0.15
"""A rendering with less sound than this has no phrase in it (punctuation, a stray symbol)."""

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enrolment:
    phrase: str
    references: np.ndarray
    """[n, 2048] unit embeddings"""
    voices: tuple[str, ...]
    """the voice label of each reference (the bench leaves a voice's own references out)"""
    near_misses: np.ndarray = field(default_factory=lambda: np.zeros((0, 2048), np.float32))
    """[m, 2048] unit embeddings of the phrase's near misses (empty: no negative enrolment)"""
    near_miss_voices: tuple[str, ...] = ()
    near_miss_texts: tuple[str, ...] = ()
    """the voice and the text of each near-miss reference"""


def normalize(phrase: str) -> str:
    text = " ".join(phrase.lower().split())
    if not any(ch.isalnum() for ch in text):
        raise ModelError("wake-phrase-empty", f"wake phrase {phrase!r} has no words to say")
    return text


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxhome" / "wake_phrases"


def trim(audio: np.ndarray) -> np.ndarray:
    """The sounding part: 10 ms frames within 40 dB of the loudest (and above -60 dBFS)."""
    step = SAMPLE_RATE // 100
    frames = audio[: len(audio) // step * step].reshape(-1, step)
    if len(frames) == 0:
        return audio[:0]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    floor = max(rms.max() * 10 ** (-40 / 20), 10 ** (-60 / 20))
    loud = np.flatnonzero(rms > floor)
    if len(loud) == 0:
        return audio[:0]
    return audio[loud[0] * step : (loud[-1] + 1) * step]


def place(speech: np.ndarray, gap_s: float) -> np.ndarray:
    """The phrase in a 1.5 s window, ending `gap_s` before the window's end (centre-cropped if long)."""
    gap = int(gap_s * SAMPLE_RATE)
    room = WINDOW - gap
    if len(speech) > room:
        start = (len(speech) - room) // 2
        speech = speech[start : start + room]
    window = np.zeros(WINDOW, dtype=np.float32)
    window[room - len(speech) : room] = speech
    return window


def renderings(
    phrase: str, voices: Sequence[object] | None = None, speeds: Sequence[float] = SPEEDS
) -> list[tuple[str, np.ndarray]]:
    """(voice label, trimmed audio) for each voice and speed; a phrase that sounds like nothing
    is an error."""
    from device.bench.voices import TUNING_VOICES, Voice, available, synthesize
    from device.errors import AudioError

    pool = [v for v in (voices or TUNING_VOICES) if isinstance(v, Voice) and available(v)]
    if not pool:
        raise ModelError("wake-phrase-tts", "no TTS voice to enrol a wake phrase with (install espeak-ng or flite)")
    out = []
    for voice in pool:
        for speed in speeds:
            try:
                audio = trim(synthesize(phrase, voice.faster(speed) if speed != 1.0 else voice))
            except AudioError as err:
                _LOGGER.warning("can't say %r with %s: %s", phrase, voice.label, err)
                continue
            if len(audio) >= MIN_SPEECH_S * SAMPLE_RATE:
                out.append((voice.label, audio))
    if not out:
        raise ModelError("wake-phrase-silent", f"wake phrase {phrase!r} synthesizes to no speech: write it out in words")
    return out


def embed_renderings(
    items: Sequence[tuple[str, np.ndarray]], embedder: PhraseEmbedder, noisy: bool = True
) -> tuple[np.ndarray, tuple[str, ...]]:
    from device.bench.conditions import mix_at_snr

    # Babble over the references was tried (tuning voices at 12 dB): it raised the scores of
    # ordinary speech more than of the phrase in babble (threshold 0.50 → 0.59, tuning recall
    # 71/67/88 % → 58/42/38 % for the bench's 3 phrases), so the references stay clean and pink.
    refs, labels = [], []
    for n, (label, audio) in enumerate(items):
        for gap in GAPS_S:
            window = place(audio, gap)
            for variant in (window, mix_at_snr(window, NOISE_SNR_DB, seed=n)) if noisy else (window,):
                refs.append(embedder.embed(np.asarray(variant, dtype=np.float32)))
                labels.append(label)
    return np.stack(refs), tuple(labels)


def _key(phrase: str, voices: Sequence[object] | None) -> str:
    names = ",".join(getattr(v, "label", str(v)) for v in voices) if voices else "tuning"
    digest = hashlib.sha256(f"{ENROL_VERSION}|{phrase}|{names}|{sha256_file(model_path())}".encode())
    return digest.hexdigest()[:24]


def near_miss_references(
    phrase: str, embedder: PhraseEmbedder, voices: Sequence[object] | None = None
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """The near misses' embeddings, voices and texts: one rate, clean, both placements (a near
    miss only has to be nearer than the phrase, so the noisy variants and the second rate, which
    would double enrolment time, are left out). One that no voice can say is skipped."""
    from models.wake_phrase_nearmiss import near_misses

    try:
        texts_to_say = near_misses(phrase)
    except ModelError as err:  # no espeak-ng: the phrase still works, without negative enrolment
        _LOGGER.warning("wake phrase %r enrolled without near misses: %s", phrase, err)
        texts_to_say = []
    refs: list[np.ndarray] = []
    labels: list[str] = []
    texts: list[str] = []
    for text in texts_to_say:
        try:
            items = renderings(text, voices, speeds=(1.0,))
        except ModelError as err:
            _LOGGER.warning("near miss %r of %r left out: %s", text, phrase, err)
            continue
        vectors, who = embed_renderings(items, embedder, noisy=False)
        refs.append(vectors)
        labels += who
        texts += [text] * len(who)
    if not refs:
        return np.zeros((0, 2048), np.float32), (), ()
    return np.concatenate(refs), tuple(labels), tuple(texts)


def enrol(phrase: str, embedder: PhraseEmbedder | None = None, voices: Sequence[object] | None = None) -> Enrolment:
    """The phrase's references and its near misses': from the cache, else synthesized, embedded
    and cached."""
    text = normalize(phrase)
    path = cache_root() / f"{_key(text, voices)}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return Enrolment(text, data["references"], tuple(str(v) for v in data["voices"]),
                                 data["near_misses"], tuple(str(v) for v in data["near_miss_voices"]),
                                 tuple(str(t) for t in data["near_miss_texts"]))
        except (OSError, ValueError, KeyError) as err:
            _LOGGER.warning("re-enrolling %r: cached references %s unreadable (%s)", text, path, err)
    own = embedder is None
    embedder = embedder or PhraseEmbedder()
    try:
        refs, labels = embed_renderings(renderings(text, voices), embedder)
        misses, miss_voices, miss_texts = near_miss_references(text, embedder, voices)
    finally:
        if own:
            embedder.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, references=refs, voices=np.array(labels), near_misses=misses,
             near_miss_voices=np.array(miss_voices, dtype=str), near_miss_texts=np.array(miss_texts, dtype=str))
    os.replace(tmp, path)
    _LOGGER.info("enrolled wake phrase %r: %d references from %d voices, %d of %d near misses", text, len(refs),
                 len(set(labels)), len(misses), len(set(miss_texts)))
    return Enrolment(text, refs, labels, misses, miss_voices, miss_texts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("phrase", nargs="+", help='the wake phrase, e.g. "hey computer"')


def run(args: argparse.Namespace) -> int:
    enrolment = enrol(" ".join(args.phrase))
    sys.stdout.write(f"{enrolment.phrase!r}: {len(enrolment.references)} references from "
                     f"{len(set(enrolment.voices))} voices and {len(enrolment.near_misses)} of its near misses "
                     f"({', '.join(dict.fromkeys(enrolment.near_miss_texts))}), cached in {cache_root()}\n")
    return 0
