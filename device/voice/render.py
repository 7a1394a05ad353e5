"""Sentences → playable audio: the chosen voice, its espeak-ng fallback, trimming, loudness, a cache.

`open_voice(settings)` picks the voice at boot (and loads it then: the first hibari call costs
~250 ms, every later one a few tens). A neural voice whose bundle is missing or broken is replaced
by espeak-ng with one warning (`tts-fallback`); a sentence the voice fails on at run time is
spoken by espeak-ng instead. Every sentence is trimmed of its leading/trailing silence and scaled
to the earcons' loudness, then kept in a bounded LRU cache: prompts and the frequent answers
("Turned on the kitchen light.") cost nothing the second time.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from device.errors import VoxError
from device.settings import VoiceSettings
from device.voice.level import loudness_db, match_loudness, trim_silence
from device.voice.prompts import earcon
from device.voice.tts import LocalTts, Speech
from device.voice.voices import FALLBACK_VOICE, NEURAL, resolve
from models.tts.text import split_sentences

_LOGGER = logging.getLogger(__name__)

CACHE_ITEMS = 128
CACHE_BYTES = 16 << 20
"""At most 128 sentences and 16 MB of float32 audio (~4 min of speech) stay cached."""


class Tts(Protocol):
    neural: bool

    @property
    def name(self) -> str: ...

    def speak(self, text: str) -> Speech: ...


class SpeechCache:
    """Least-recently-used sentences → rendered audio, bounded in entries and bytes."""

    def __init__(self, max_items: int = CACHE_ITEMS, max_bytes: int = CACHE_BYTES) -> None:
        self._items: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        audio = self._items.get(key)
        if audio is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        if key in self._items:
            self._bytes -= self._items.pop(key).nbytes
        if audio.nbytes > self._max_bytes:
            return
        self._items[key] = audio
        self._bytes += audio.nbytes
        while len(self._items) > self._max_items or self._bytes > self._max_bytes:
            _key, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


class SpeechRenderer:
    """One sentence at a time (the streaming unit), ready for the player."""

    def __init__(
        self,
        tts: Tts,
        fallback: Tts | None = None,
        *,
        target_db: float | None = None,
        cache: SpeechCache | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.tts = tts
        self.fallback = fallback
        self.target_db = loudness_db(earcon("done")) if target_db is None else target_db
        self.cache = cache if cache is not None else SpeechCache()
        self._clock = clock

    @property
    def neural(self) -> bool:
        return self.tts.neural

    @property
    def name(self) -> str:
        return self.tts.name

    @staticmethod
    def sentences(text: str) -> list[str]:
        return split_sentences(text)

    def render(self, sentence: str) -> Speech:
        """The sentence's audio: cached, else synthesized (fallback on failure), trimmed and levelled."""
        key = " ".join(sentence.split())
        cached = self.cache.get(key)
        if cached is not None:
            return Speech(cached, 0)
        start = self._clock()
        try:
            audio = self.tts.speak(key).audio
            keep = True
        except VoxError as err:
            if self.fallback is None:
                raise
            _LOGGER.warning("%s can't speak a sentence (%s), espeak-ng speaks it", self.tts.name, err.message,
                            extra={"code": "tts-fallback"})
            audio = self.fallback.speak(key).audio
            keep = False  # the voice may recover (a transient failure); don't pin the fallback's audio
        audio = match_loudness(trim_silence(audio), self.target_db)
        if keep:
            self.cache.put(key, audio)
        return Speech(audio, int((self._clock() - start) * 1000))

    def speak(self, text: str) -> Speech:
        """All of `text` at once (the device name in "I don't know a device called …")."""
        start = self._clock()
        parts = [self.render(s).audio for s in self.sentences(text)]
        return Speech(np.concatenate(parts).astype(np.float32), int((self._clock() - start) * 1000))


def open_voice(settings: VoiceSettings, installed: Callable[[str], Path | None] | None = None) -> SpeechRenderer | None:
    """The configured voice, loaded and warmed; espeak-ng when a neural voice can't be loaded.

    `installed(voice_name)` gives the OTA-installed bundle for that voice (None: not installed);
    then `voice.tts_bundle`, then the build cache (built from the package on first use).
    """
    engine, voice = resolve(settings.engine, settings.voice, settings.language)
    if engine == "none":
        return None
    espeak = LocalTts("espeak-ng", voice=FALLBACK_VOICE[settings.language], speed=settings.speed)
    if engine not in NEURAL:
        local = LocalTts(engine, voice=voice, speed=settings.speed)
        return SpeechRenderer(local, espeak if engine != "espeak-ng" else None)
    name = NEURAL[engine][voice]
    try:
        tts = _load_neural(name, settings, installed)
    except VoxError as err:
        _LOGGER.warning("voice %s unusable, espeak-ng speaks instead: [%s] %s", name, err.code, err.message,
                        extra={"code": "tts-fallback"})
        return SpeechRenderer(espeak)
    return SpeechRenderer(tts, espeak)


def _load_neural(name: str, settings: VoiceSettings, installed: Callable[[str], Path | None] | None) -> Tts:
    from device.voice.neural import NeuralTts
    from models.tts.factory import ensure_tts_bundle, load_runner

    bundle = Path(settings.tts_bundle) if settings.tts_bundle else (installed(name) if installed else None)
    if bundle is None:
        bundle = ensure_tts_bundle(name)
    tts = NeuralTts(load_runner(bundle), speed=settings.speed)
    tts.speak("Okay.")  # the first run allocates the session's buffers: pay it at boot, not on the first answer
    _LOGGER.info("voice %s loaded from %s", name, bundle)
    return tts
