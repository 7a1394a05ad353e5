"""Which speech bundle to load: the one named in settings, else the factory's cached build."""

from __future__ import annotations

from pathlib import Path

from device.errors import ModelError
from models.asr.sources import AsrModel


def asr_bundle(configured: str | Path | None, *, model: AsrModel = "tiny.en") -> Path:
    """`configured` if given (it must exist); otherwise build or reuse the cached bundle of `model`.

    Building needs the `build` extra; a device without it must be given a bundle (OTA installs one).
    """
    if configured:
        path = Path(configured)
        if not (path / "manifest.json").is_file():
            raise ModelError("model-missing", f"speech bundle {path} has no manifest.json (not a model bundle)")
        return path
    from models.asr.factory import ensure_asr_bundle

    return ensure_asr_bundle(model=model)
