"""What every voice runner offers: synchronous text → float32 mono audio at its own rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from device.errors import ModelError


class VoiceRunner(Protocol):
    name: str
    """The voice's id, e.g. 'hibari-heart', 'piper-joe' (logs, the bench, the manifest)."""
    sample_rate: int
    """The model's native rate (24000 hibari, 22050 Piper); the caller resamples to the player's."""

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """One sentence (or a few) → float32 mono at `sample_rate`; raises AudioError/ModelError."""
        ...

    def close(self) -> None: ...


def open_voice_session(path: Path, *, threads: int = 1) -> Any:
    """An ORT session for a voice: a process that speaks now and then, not all the time.

    Measured on the Piper voice (`voxhome bench tts`, and A/B runs interleaved in one process):
    with ORT's defaults the largest sentence's activations stay allocated for the life of the
    process (+188 MB after a hundred answers). Turning the CPU arena off gives them back but costs
    1.5-1.6x the time per sentence; keeping the arena and shrinking it after every run
    (`run_options()`) gives them back for 0.9-1.0x the time, with big buffers sent to
    mmap (models.asr.heap) so that the free really shrinks RSS (+88 MB after load and answers).
    Memory-pattern planning is off: it reserves one block per input shape, and a voice's input
    length changes with every sentence (0.9x the time without it).
    """
    import onnxruntime as ort

    from models.asr.heap import limit_heap_growth, trim
    from models.onnx import session_options

    if not Path(path).is_file():
        raise ModelError("model-missing-file", f"voice model {path} does not exist")
    limit_heap_growth()
    options = session_options(threads)
    options.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError("model-corrupt", f"can't load voice model {path}: {err}") from None
    finally:
        trim()


def run_options() -> Any:
    """Per-run options for a voice session: hand the arena's growth back after each sentence."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options
