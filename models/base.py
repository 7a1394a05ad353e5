"""What the rest of voxhome needs from a model runner, whatever runtime is underneath.

Runners are synchronous and resettable: the service calls them from its audio task, tests call
them on bytes. They consume 16 kHz mono s16le audio and report in audio time.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from device.events import Detection, Transcript


class Scorer(Protocol):
    """One neural network step: a window of features in, one probability out.

    `streaming` models keep state between calls and get consecutive, non-overlapping windows
    (microWakeWord); the others are stateless and see a window that slides one step at a time
    (openWakeWord classifiers). Both TFLite and ONNX models implement this, so nothing above
    it cares which runtime a model uses.
    """

    input_shape: tuple[int, ...]
    streaming: bool

    def score(self, window: np.ndarray) -> float: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class WakeModel(Protocol):
    """Detects one or more wake words in a stream of audio."""

    @property
    def words(self) -> tuple[str, ...]: ...

    def process_streaming(self, audio: bytes, timestamp_ms: int) -> list[Detection]:
        """Feed audio that starts at `timestamp_ms`; return the detections it completed."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class Vad(Protocol):
    """Speech probability per fixed window, state carried across calls."""

    window_samples: int

    def process_streaming(self, audio: bytes) -> list[float]:
        """Feed audio; return one probability per window completed by it."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class Asr(Protocol):
    """Turns one utterance into text (local speech recognition)."""

    def transcribe(self, audio: bytes, timestamp_ms: int = 0) -> Transcript: ...

    def close(self) -> None: ...
