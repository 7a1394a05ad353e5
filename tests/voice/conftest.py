from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from device.voice.prompts import build_prompt_bundle


class RecordingOutput:
    """An Output that keeps what it was given and, like a sound card, takes real time to play it."""

    def __init__(self, realtime: bool = True) -> None:
        self.blocks: list[bytes] = []
        self.realtime = realtime
        self.closed = False

    def write(self, audio: bytes) -> None:
        self.blocks.append(audio)
        if self.realtime:
            time.sleep(len(audio) / 2 / 16000)

    def queued_samples(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    @property
    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.blocks), dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def prompt_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_prompt_bundle(tmp_path_factory.mktemp("bundles") / "prompts", "espeak-ng")


@pytest.fixture
def recording() -> RecordingOutput:
    return RecordingOutput()
