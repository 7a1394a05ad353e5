"""The hibari voice (Apache-2.0): a 7.9 MB acoustic ONNX model distilled from Kokoro-82M.

We run the ONNX session ourselves (`models.onnx`, one thread, like every other model here) and use
only two pieces of the hibari package: its rule-and-lexicon G2P (misaki's, ported without spaCy or
espeak-ng) and its host-side vocoder (`hibari.dsp`: the network predicts spectra, numpy turns them
into a waveform). The bundle carries what an update may change: the acoustic model, its phoneme
vocabulary, the out-of-vocabulary net and the G2P's lexicons and tagger as `g2p.sqlite`
(`models.tts.lexicon`: looked up a word at a time instead of ~125 MB of dicts in RSS). A bundle
built before that file existed still loads, with the package's in-memory lexicons.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import AudioError, ModelError
from models.onnx import check_inputs
from models.tts.base import open_voice_session, run_options
from models.tts.lexicon import FILE as G2P_DB
from models.tts.lexicon import open_g2p

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MAX_PHONEMES = 400
"""The model's longest input; a longer sentence is split at clause punctuation."""
_CLAUSE = re.compile(r"(?<=[,;:—])\s+")
FILES = ("hibari.onnx", "vocab.json", "oov.onnx", "oov.json")


class HibariOnnx:
    """hibari-heart: American English, female, 24 kHz."""

    sample_rate = SAMPLE_RATE

    def __init__(self, session: Any, vocab: dict[str, int], g2p: Any, *, name: str = "hibari-heart", seed: int = 0) -> None:
        self._session = session
        self._vocab = vocab
        self._g2p = g2p
        self._seed = seed
        self._run_options = run_options()
        self.name = name

    @classmethod
    def load(cls, bundle_dir: Path, *, threads: int = 1, british: bool = False) -> HibariOnnx:
        """Load the bundle's model and G2P once; synthesis is then fast."""
        bundle_dir = Path(bundle_dir)
        for name in FILES:
            if not (bundle_dir / name).is_file():
                raise ModelError("model-missing-file", f"hibari bundle {bundle_dir} lacks {name}")
        try:
            from hibari.g2p import G2P
            from hibari.g2p.oov import OOV
        except ImportError:
            raise ModelError("model-runtime", "the hibari voice needs the hibari-tts package (its G2P)") from None
        session = open_voice_session(bundle_dir / "hibari.onnx", threads=threads)
        check_inputs(session, {"ids": (1, None), "speed": (1,)}, "hibari")
        try:
            vocab = json.loads((bundle_dir / "vocab.json").read_text(encoding="utf-8"))
            oov = OOV(str(bundle_dir / "oov.onnx"), session=open_voice_session(bundle_dir / "oov.onnx"))
        except (OSError, ValueError, KeyError) as err:
            raise ModelError("model-corrupt", f"hibari bundle {bundle_dir}: {err}") from None
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise ModelError("model-corrupt", f"hibari bundle {bundle_dir}: vocab.json is not a phoneme → id map")
        if (bundle_dir / G2P_DB).is_file():
            g2p = open_g2p(bundle_dir / G2P_DB, oov, british=british)
        else:
            _LOGGER.info("hibari bundle %s has no %s: the G2P loads the package's lexicons", bundle_dir, G2P_DB)
            g2p = G2P(oov=oov, british=british)
        return cls(session, vocab, g2p)

    def phonemes(self, text: str) -> list[str]:
        """The model's phoneme strings for `text`, each short enough for one run."""
        phonemes = str(self._g2p(text) or "")
        if len(phonemes) <= MAX_PHONEMES:
            return [phonemes] if phonemes.strip() else []
        chunks: list[str] = []
        current = ""
        for part in _CLAUSE.split(phonemes):
            if current and len(current) + len(part) + 1 > MAX_PHONEMES:
                chunks.append(current)
                current = part
            else:
                current = f"{current} {part}" if current else part
        return [*chunks, current[:MAX_PHONEMES]] if current else chunks

    def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        from hibari import dsp

        # A fixed seed for the noise branch: the same sentence sounds the same every time (the
        # answer cache and the golden check rely on it).
        rng = np.random.default_rng(self._seed)
        parts = []
        for chunk in self.phonemes(text):
            ids = [0, *(self._vocab[c] for c in chunk if c in self._vocab), 0]
            if len(ids) < 3:
                continue
            try:
                outputs = self._session.run(
                    None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([speed], np.float32)},
                    self._run_options,
                )
            except Exception as err:  # onnxruntime's errors are untyped
                raise ModelError("model-run", f"hibari failed on {len(ids)} phonemes: {err}") from None
            parts.append(dsp.synth(*(o[0] for o in outputs), rng).astype(np.float32, copy=False))
        if not parts:
            raise AudioError("audio-tts", f"hibari has no phonemes for {text[:40]!r}")
        audio = np.concatenate(parts)
        if not np.isfinite(audio).all():
            raise ModelError("model-run", "hibari produced non-finite samples")
        return audio

    def close(self) -> None:
        self._session = None
