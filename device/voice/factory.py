"""Build the prompt bundle: `voxhome models build prompts`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from device.voice.prompts import build_prompt_bundle, cache_root, ensure_prompt_bundle
from device.voice.tts import ENGINES
from models.manifest import deliver_bundle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="espeak-ng", help="local TTS that speaks the phrases")
    parser.add_argument("--cache-dir", type=Path, help="bundle cache (default $XDG_CACHE_HOME/voxhome/bundles)")
    parser.add_argument("--out", type=Path, help="also copy the bundle to this directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


def run(args: argparse.Namespace) -> int:
    if args.force:
        from device.voice.prompts import build_key

        bundle = build_prompt_bundle((args.cache_dir or cache_root()) / f"prompts-{build_key(args.engine)}", args.engine)
    else:
        bundle = ensure_prompt_bundle(args.engine, root=args.cache_dir)
    bundle, manifest = deliver_bundle(bundle, args.out)
    summary = {
        "bundle": str(bundle), "kind": manifest.kind, "version": manifest.version,
        "files": len(manifest.files), "bytes": sum(f.size for f in manifest.files),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0
