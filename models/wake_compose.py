"""The wake model the settings ask for: model words, text phrases, or both side by side.

`[[wake.words]]` entries with `model = ...` run in models/wake.py's WakeWordDetector, entries with
`phrase = ...` in models/wake_phrase.py's WakePhraseDetector (enrolled at start-up, a cache read
after the first time); with both kinds, one `CompositeWake` feeds each chunk to both.
"""

from __future__ import annotations

from device.errors import ModelError
from device.events import Detection
from device.settings import WakeSettings
from models.base import WakeModel


class CompositeWake:
    """Several WakeModels over the same stream; implements models.base.WakeModel."""

    def __init__(self, parts: tuple[WakeModel, ...]) -> None:
        self.parts = parts
        names = self.words
        if len(set(names)) != len(names):
            raise ModelError("model-config", f"wake word listed twice: {list(names)}")

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(w for part in self.parts for w in part.words)

    def process_streaming(self, audio: bytes, timestamp_ms: int) -> list[Detection]:
        return [d for part in self.parts for d in part.process_streaming(audio, timestamp_ms)]

    def reset(self) -> None:
        for part in self.parts:
            part.reset()

    def close(self) -> None:
        for part in self.parts:
            part.close()


def build_wake_model(settings: WakeSettings) -> WakeModel:
    """Settings → the runner(s); a phrase that can't be enrolled fails here, at start-up."""
    import dataclasses

    from models.wake import WakeWordDetector

    models = tuple(w for w in settings.words if w.phrase is None)
    phrases = tuple(w for w in settings.words if w.phrase is not None)
    parts: list[WakeModel] = []
    if models:
        parts.append(WakeWordDetector.from_settings(dataclasses.replace(settings, words=models)))
    if phrases:
        from models.wake_phrase import (
            DEFAULT_THRESHOLD,
            PhraseEmbedder,
            PhraseSpec,
            WakePhraseDetector,
        )
        from models.wake_phrase_enrol import enrol

        embedder = PhraseEmbedder()
        specs = []
        for word in phrases:
            assert word.phrase is not None
            enrolment = enrol(word.phrase, embedder)
            threshold = word.threshold if word.threshold is not None else DEFAULT_THRESHOLD
            specs.append(PhraseSpec(enrolment.phrase, enrolment.references, threshold, round(settings.refractory_s * 1000),
                                    near_misses=enrolment.near_misses))
        parts.append(WakePhraseDetector(specs, embedder))
    return parts[0] if len(parts) == 1 else CompositeWake(tuple(parts))
