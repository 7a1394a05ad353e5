"""What every voice runner offers: synchronous text → float32 mono audio at its own rate."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VoiceRunner(Protocol):
    name: str
    """The voice's id, e.g. 'hibari-heart', 'piper-joe' (logs, the bench, the manifest)."""
    sample_rate: int
    """The model's native rate (24000 hibari, 22050 Piper); the caller resamples to the player's."""

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """One sentence (or a few) → float32 mono at `sample_rate`; raises AudioError/ModelError."""
        ...

    def close(self) -> None: ...
