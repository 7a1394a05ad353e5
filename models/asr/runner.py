"""The on-device speech recognizer: Whisper (tiny.en or base) as int8 ONNX graphs, onnxruntime + numpy only.

`WhisperOnnx.load(bundle_dir, threads=1, language="en")` opens a bundle written by
`models.asr.factory`; its sizes (width, heads, layers) are read off the graphs' inputs, and a
multilingual model is told the language in its prompt, as Whisper was trained:
<|startoftranscript|> <|de|> <|transcribe|> <|notimestamps|> (an English-only model has no
language slot: <|startoftranscript|> <|notimestamps|>).
`.transcribe(audio)` runs the encoder on the utterance plus a few seconds of silence, never on
a 30 s window padded with zeros, and decodes greedily with the key/value cache; given a
`GrammarSearch` (`.prepare(graph)`), it also reads the same encoding constrained to the home's
sentences (see `models.asr.grammar_search`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from device.errors import ModelError
from models.asr.grammar_search import GrammarSearch, Hypothesis, WordGraph
from models.asr.heap import limit_heap_growth, trim
from models.asr.loops import drop_repeats, repeats, token_loop
from models.asr.mel import HOP, MAX_FRAMES, N_MELS, SAMPLE_RATE, LogMel
from models.asr.stop import Stop, Stopped, run_options, stopped
from models.asr.tokenizer import Tokenizer
from models.manifest import BundleManifest, verify_bundle
from models.onnx import check_inputs, session_options

_LOGGER = logging.getLogger(__name__)

MULTILINGUAL_VOCAB = 51865
"""Whisper's own rule: the multilingual vocabulary has one token more than the English-only one
(the English models' vocabulary lists the language tokens too, but they never learned them)."""
TRANSCRIBE = "<|transcribe|>"
WINDOW_SAMPLES = MAX_FRAMES * HOP
"""30 s, the most the encoder takes at once; longer audio is transcribed window by window."""
SILENCE_PEAK = 1e-3
"""Audio whose peak stays below this (-60 dBFS) is treated as silence without running the model."""
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
DEFAULT_PAD_SECONDS = 2.0
"""Trailing silence added to every utterance before the encoder (measured: `voxhome bench asr`)."""
TOKENS_PER_SECOND = 12
"""A cap on decoded tokens per second of audio (fast speech is ~5); it stops runaway repetition."""


@dataclass(frozen=True, slots=True)
class Details:
    duration_s: float
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float
    encoder_ms: float
    decoder_ms: float
    windows: int
    skipped: str | None = None
    """Why the model didn't run at all ('empty', 'silence'), else None."""
    sum_logprob: float = 0.0
    """Sum of the chosen tokens' log-probabilities, end-of-text included (all windows)."""
    scored_tokens: int = 0
    """How many tokens that sum covers (the text's plus one end per window)."""
    grammar: tuple[Hypothesis, ...] = ()
    """The best sentences of the grammar searched on the same encoding (one-window audio only)."""
    grammar_ms: float = 0.0

    @property
    def mean_logprob(self) -> float:
        """The free reading's log-probability per token: what a grammar sentence is weighed against."""
        return self.sum_logprob / self.scored_tokens if self.scored_tokens else 0.0


@dataclass(frozen=True, slots=True)
class FreeDecode:
    """Greedy decoding of one encoded window."""

    tokens: tuple[int, ...]
    sum_logprob: float
    """Log-probability of the kept tokens, plus the end-of-text's when the model wrote one."""
    scored: int
    """Tokens in `sum_logprob`: the text's plus the end-of-text (if written; a loop cut short has none)."""
    no_speech_prob: float
    avg_logprob: float
    """Whisper's own measure (every step taken, over the kept tokens + 1), for the no-speech rule."""


@dataclass(frozen=True, slots=True)
class EncoderOutput:
    """The encoder's output for one utterance: cross-attention keys/values per decoder layer."""

    feeds: dict[str, np.ndarray]


class WhisperOnnx:
    def __init__(self, bundle_dir: Path, manifest: BundleManifest, threads: int, language: str = "en") -> None:
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.threads = threads
        meta = manifest.metadata
        # Whisper never saw speech run to the very end of its window in training: with no trailing
        # silence it often loops instead of ending (WER 0.58 instead of 0.29 on the bench's
        # commands); 2 s of it match the full 30 s window's WER at an eighth of the latency.
        self.pad_samples = int(float(meta.get("pad_seconds", DEFAULT_PAD_SECONDS)) * SAMPLE_RATE)
        limit_heap_growth()
        # Largest first, trimming after each: a session briefly holds its file twice while it
        # loads, and that transient should sit on the smallest possible base.
        self._head = _open(bundle_dir / "head.onnx", threads)
        self._decoder = _open(bundle_dir / "decoder.onnx", threads)
        self._encoder = _open(bundle_dir / "encoder.onnx", threads)
        self.layers, self.heads, self.head_dim, self.d_model = _check_sizes(bundle_dir, self._encoder, self._decoder, self._head)
        # Memory-mapped: only the rows of tokens actually used become resident.
        self._embed_codes = _load_npy(bundle_dir / "embed_codes.npy", np.int8, 2)
        self._embed_scales = _load_npy(bundle_dir / "embed_scales.npy", np.float32, 1)
        if self._embed_codes.shape[0] != self._embed_scales.shape[0] or self._embed_codes.shape[1] != self.d_model:
            raise ModelError("model-shape", f"{bundle_dir}: embedding table and scales disagree in shape")
        self.tokenizer = Tokenizer.load(bundle_dir / "tokenizer.npz")
        config = _load_json(bundle_dir / "config.json")
        vocab = self._embed_codes.shape[0]
        suppress = [i for i in config.get("suppress_ids", []) if 0 <= i < vocab]
        # Never emit control tokens other than end-of-text: no timestamps, no language tags.
        suppress += [i for i in range(self.tokenizer.first_special, vocab) if i != self.tokenizer.eot]
        self._suppress = np.array(sorted(set(suppress)), dtype=np.int64)
        self._suppress_begin = np.array([i for i in config.get("suppress_ids_begin", []) if 0 <= i < vocab], dtype=np.int64)
        self._mel = LogMel()
        self.multilingual = vocab >= MULTILINGUAL_VOCAB
        self.language = language
        self.prompt = self._prompt(language)

    def _prompt(self, language: str) -> tuple[int, ...]:
        tok = self.tokenizer
        # Home Assistant's codes name regional variants ('de-CH', 'pt_BR'); Whisper has one token per language.
        code = language.replace("_", "-").split("-")[0].lower()
        if not self.multilingual:
            if code != "en":
                raise ModelError(
                    "asr-language",
                    f"the speech model {self.manifest.name} understands English only, not {language!r}: "
                    "set [asr] model = \"base\" (multilingual) or [intent] language = \"en\"",
                )
            return (tok.sot, tok.no_timestamps)
        lang = tok.special.get(f"<|{code}|>")
        if lang is None or TRANSCRIBE not in tok.special:
            raise ModelError("asr-language", f"the speech model {self.manifest.name} has no language {language!r}")
        return (tok.sot, lang, tok.special[TRANSCRIBE], tok.no_timestamps)

    @classmethod
    def load(
        cls, bundle_dir: str | Path, threads: int = 1, *, language: str = "en", pad_seconds: float | None = None,
        verify_hashes: bool = False,
    ) -> WhisperOnnx:
        """Open a bundle; sizes are always checked against the manifest, hashes on request.

        `language` is what the speaker hears ('en', 'de', …): an English-only bundle refuses any
        other (ModelError 'asr-language'), a multilingual one is prompted with it.

        `pad_seconds` of silence after the utterance overrides the bundle's default (the bench
        measures the choices; 30 means "always a full 30 s window", as Whisper was trained).
        """
        bundle_dir = Path(bundle_dir)
        manifest = verify_bundle(bundle_dir, hashes=verify_hashes)
        if manifest.kind != "asr":
            raise ModelError("model-bad-manifest", f"{bundle_dir} is a {manifest.kind} bundle, not asr")
        if not 1 <= threads <= 16:
            raise ModelError("asr-config", f"threads must be between 1 and 16, not {threads}")
        runner = cls(bundle_dir, manifest, threads, language)
        if pad_seconds is not None:
            if not 0.0 <= pad_seconds <= 30.0:
                raise ModelError("asr-config", f"pad_seconds must be between 0 and 30, not {pad_seconds}")
            runner.pad_samples = int(pad_seconds * SAMPLE_RATE)
        return runner

    # -- building blocks shared with grammar search -------------------------------------------

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        """[B, L] token ids → [B, L, D] float32 from the int8 table."""
        return self._embed_codes[tokens].astype(np.float32) * self._embed_scales[tokens][..., None]

    def encode(self, audio: np.ndarray, stop: Stop | None = None) -> EncoderOutput:
        mel = self._mel(audio, self.pad_samples)
        if mel.shape[1] % 2:
            mel = mel[:, :-1]
        outputs = _run(self._encoder, {"mel": mel[None]}, stop)
        names = [o.name for o in self._encoder.get_outputs()]
        return EncoderOutput(dict(zip(names, outputs, strict=True)))

    def empty_cache(self, batch: int) -> dict[str, np.ndarray]:
        empty = np.zeros((batch, self.heads, 0, self.head_dim), np.float32)
        return {f"past_{kind}_{i}": empty for i in range(self.layers) for kind in "kv"}

    def decode(self, tokens: np.ndarray, cache: dict[str, np.ndarray], cross: EncoderOutput,
               stop: Stop | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the decoder on [B, L] tokens after `cache`; returns hidden [B, L, D] and the new cache."""
        if stop is not None:
            stop.check()
        feeds = {"embeddings": self.embed(tokens), **cache, **cross.feeds}
        hidden, *present = _run(self._decoder, feeds, stop)
        return hidden, {f"past_{kind}_{i}": present[2 * i + (kind == "v")] for i in range(self.layers) for kind in "kv"}

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        (out,) = self._head.run(None, {"hidden": hidden.reshape(-1, self.d_model)})
        return np.asarray(out)

    def token_logits(self, hidden: np.ndarray, *, first: bool) -> np.ndarray:
        """Logits [N, vocab] with the tokens free decoding never emits masked (`first`: the first step's too).

        Both free and grammar-constrained decoding normalise over this, so their log-probabilities compare.
        """
        logits = self.logits(hidden)
        logits[:, self._suppress] = -np.inf
        if first:
            logits[:, self._suppress_begin] = -np.inf
        return logits

    def search_grammar(self, cross: EncoderOutput, search: GrammarSearch, n_best: int = 3) -> list[Hypothesis]:
        """The n best sentences of `search`'s grammar for an encoded utterance (`encode` once, reuse)."""
        return search.search(cross, n_best=n_best)

    def prepare(self, graph: WordGraph) -> GrammarSearch:
        """A search over `graph` for this model's tokens (built once per grammar, ~0.3 s)."""
        return GrammarSearch(self, graph)

    # -- free transcription -------------------------------------------------------------------

    def transcribe(self, audio: np.ndarray, search: GrammarSearch | None = None, stop: Stop | None = None,
                   search_if: Callable[[str], bool] | None = None) -> tuple[str, Details]:
        """Free transcription; with `search`, also the grammar's best sentences for the same audio
        (the encoder runs once for both) — only when `search_if(free text)` says the free text
        needs them, if given. `stop` (another thread) gives the reading up: `Stopped`."""
        audio = _check_audio(audio)
        duration = len(audio) / SAMPLE_RATE
        if len(audio) < HOP * 2:
            return "", Details(duration, (), 0.0, 1.0, 0.0, 0.0, 0, skipped="empty")
        if float(np.abs(audio).max()) < SILENCE_PEAK:
            return "", Details(duration, (), 0.0, 1.0, 0.0, 0.0, 0, skipped="silence")
        texts, tokens, logprobs, no_speech = [], [], [], []
        enc_ms = dec_ms = sum_logprob = 0.0
        scored = 0
        grammar: list[Hypothesis] = []
        grammar_ms = 0.0
        starts = range(0, len(audio), WINDOW_SAMPLES)
        for start in starts:
            window = audio[start : start + WINDOW_SAMPLES]
            if len(window) < HOP * 2:
                continue
            t0 = time.perf_counter()
            cross = self.encode(window, stop)
            t1 = time.perf_counter()
            free = self.decode_free(cross, len(window) / SAMPLE_RATE, stop)
            ids, p_none = list(free.tokens), free.no_speech_prob
            logprob = free.avg_logprob
            sum_logprob += free.sum_logprob
            scored += free.scored
            t2 = time.perf_counter()
            enc_ms += (t1 - t0) * 1000
            dec_ms += (t2 - t1) * 1000
            if p_none > NO_SPEECH_THRESHOLD and logprob < LOGPROB_THRESHOLD:
                _LOGGER.debug("window at %.1f s judged no speech (p=%.2f)", start / SAMPLE_RATE, p_none)
                ids = []
            texts.append(self.tokenizer.decode(ids).strip().rstrip(",;"))
            # A command is one window; a longer utterance is a question, not a home sentence.
            if search is not None and len(starts) == 1 and (search_if is None or search_if(texts[-1])):
                t2 = time.perf_counter()
                grammar = search.search(cross, n_best=3, stop=stop)
                grammar_ms = (time.perf_counter() - t2) * 1000
            tokens += ids
            logprobs.append(logprob)
            no_speech.append(p_none)
        text = " ".join(t for t in texts if t)
        trim()
        details = Details(
            duration_s=duration,
            tokens=tuple(tokens),
            avg_logprob=float(np.mean(logprobs)) if logprobs else 0.0,
            no_speech_prob=float(min(no_speech)) if no_speech else 1.0,
            encoder_ms=enc_ms,
            decoder_ms=dec_ms,
            windows=len(logprobs),
            sum_logprob=sum_logprob,
            scored_tokens=scored,
            grammar=tuple(grammar),
            grammar_ms=grammar_ms,
        )
        return text, details

    def decode_free(self, cross: EncoderOutput, seconds: float, stop: Stop | None = None) -> FreeDecode:
        """Greedy decoding of an encoded window of `seconds` of audio (`encode` once, reuse)."""
        max_tokens = min(224, int(TOKENS_PER_SECOND * seconds) + 8)
        tokens = np.array([self.prompt], dtype=np.int64)
        cache = self.empty_cache(1)
        out: list[int] = []
        steps: list[float] = []
        total_logprob = 0.0
        no_speech_prob = 0.0
        ended = False
        for step in range(max_tokens):
            hidden, cache = self.decode(tokens, cache, cross, stop)
            if step == 0 and self.tokenizer.no_speech is not None:
                first = _log_softmax(self.logits(hidden[0, :1]))[0]
                no_speech_prob = float(np.exp(first[self.tokenizer.no_speech]))
            logits = self.token_logits(hidden[0, -1:], first=step == 0)[0]
            logprobs = _log_softmax(logits[None])[0]
            token = int(np.argmax(logits))
            total_logprob += float(logprobs[token])
            steps.append(float(logprobs[token]))
            if token == self.tokenizer.eot:
                ended = True
                break
            out.append(token)
            if token_loop(out):
                del out[len(out) - token_loop(out) * 2 :]
                break
            if repeats(self.tokenizer.decode(out)):
                out = self._first_round(out)
                break
            tokens = np.array([[token]], dtype=np.int64)
        kept = steps[: len(out)] + steps[-1:] if ended else steps[: len(out)]
        return FreeDecode(tuple(out), float(sum(kept)), len(kept), no_speech_prob, total_logprob / (len(out) + 1))

    def _first_round(self, tokens: list[int]) -> list[int]:
        """The shortest prefix of a looped token sequence that reads as the loop's first round."""
        kept = drop_repeats(self.tokenizer.decode(tokens))
        for end in range(1, len(tokens) + 1):
            if self.tokenizer.decode(tokens[:end]).strip().rstrip(",;") == kept:
                return tokens[:end]
        return tokens

    def close(self) -> None:
        pass  # sessions and maps are released with the object


def _run(session: ort.InferenceSession, feeds: dict[str, np.ndarray], stop: Stop | None) -> list[Any]:
    try:
        return list(session.run(None, feeds, run_options(stop)))
    except Exception as err:
        if stopped(stop, err):
            raise Stopped from err
        raise


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _open(path: Path, threads: int) -> ort.InferenceSession:
    """An ORT session without a memory arena: activations are freed after each run instead of
    being kept at their high-water mark (a batch of beam hypotheses would otherwise pin its peak).
    Weight pre-packing stays on: it costs ~7 MB and halves the decoder's time per token.
    """
    if not path.is_file():
        raise ModelError("model-missing-file", f"{path} is missing")
    options = session_options(threads)
    options.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError("model-corrupt", f"can't load ONNX model {path}: {err}") from None
    finally:
        trim()
    return session


def _check_sizes(bundle: Path, encoder: ort.InferenceSession, decoder: ort.InferenceSession,
                 head: ort.InferenceSession) -> tuple[int, int, int, int]:
    """(layers, heads, head width, model width), read off the decoder's inputs and checked against
    the other two graphs: a bundle whose graphs disagree fails here, not mid-sentence."""
    shapes = {i.name: i.shape for i in decoder.get_inputs()}
    layers = sum(1 for name in shapes if name.startswith("past_k_"))
    past, embeddings = shapes.get("past_k_0"), shapes.get("embeddings")
    if not layers or past is None or embeddings is None or len(past) != 4 or len(embeddings) != 3:
        raise ModelError("model-shape", f"{bundle / 'decoder.onnx'} is not a Whisper decoder (inputs {sorted(shapes)})")
    heads, head_dim, d_model = past[1], past[3], embeddings[2]
    if not all(isinstance(n, int) and n > 0 for n in (heads, head_dim, d_model)) or heads * head_dim != d_model:
        raise ModelError("model-shape", f"{bundle / 'decoder.onnx'} has inconsistent sizes {past} / {embeddings}")
    check_inputs(encoder, {"mel": [1, N_MELS, None]}, str(bundle / "encoder.onnx"))
    check_inputs(decoder, {f"past_{kind}_{i}": [None, heads, None, head_dim] for i in range(layers) for kind in "kv"},
                 str(bundle / "decoder.onnx"))
    check_inputs(head, {"hidden": [None, d_model]}, str(bundle / "head.onnx"))
    if len(encoder.get_outputs()) != 2 * layers:
        raise ModelError("model-shape", f"{bundle / 'encoder.onnx'} feeds {len(encoder.get_outputs()) // 2} decoder layers, not {layers}")
    return layers, heads, head_dim, d_model


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ModelError("asr-bad-audio", f"expected mono float32 samples, got an array of shape {audio.shape}")
    audio = audio.astype(np.float32, copy=False)
    if audio.size and not np.isfinite(audio).all():
        raise ModelError("asr-bad-audio", "audio contains NaN or infinite samples")
    return audio


def _load_npy(path: Path, dtype: type, ndim: int) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ModelError("model-missing-file", f"{path} is missing") from None
    except (OSError, ValueError) as err:
        raise ModelError("model-corrupt", f"{path} is not a readable .npy array: {err}") from None
    if array.dtype != np.dtype(dtype) or array.ndim != ndim:
        raise ModelError("model-corrupt", f"{path} holds {array.dtype} {array.shape}, expected {np.dtype(dtype)} rank {ndim}")
    return array


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError("model-missing-file", f"{path} is missing") from None
    except (OSError, ValueError) as err:
        raise ModelError("model-corrupt", f"{path} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise ModelError("model-corrupt", f"{path} should hold a JSON object")
    return data
