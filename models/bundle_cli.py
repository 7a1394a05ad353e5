"""`voxhome models bundle DIR --name --kind --version`: turn a model directory into a bundle.

Writes manifest.json (every file with its size and sha256, the golden cases) into DIR, verifies
the result, and with --archive also packs the one-file form that `voxhome ota publish` signs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from device.errors import ModelError
from models.manifest import BUNDLE_KINDS, Golden, verify_bundle, write_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="model directory (model files, tokenizer, config, golden audio)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--kind", required=True, choices=BUNDLE_KINDS)
    parser.add_argument("--version", required=True, help="dotted numbers, e.g. 1.4.0")
    parser.add_argument("--runtime", default="onnxruntime", help="onnxruntime, tflite or opus")
    parser.add_argument("--min-voxhome", default="0.1.0")
    parser.add_argument("--golden", action="append", default=[], metavar="AUDIO=EXPECTED",
                        help="health-check case: audio file inside DIR and the expected text or wake word")
    parser.add_argument("--archive", type=Path, metavar="FILE.tar", help="also pack the bundle into one archive")


def run(args: argparse.Namespace) -> int:
    from ota.slots import parse_version

    if not args.directory.is_dir():
        raise ModelError("model-missing", f"{args.directory} is not a directory")
    parse_version(args.version)
    parse_version(args.min_voxhome)
    golden = []
    for item in args.golden:
        audio, sep, expected = item.partition("=")
        if not sep:
            raise ModelError("model-bad-manifest", f"--golden must look like AUDIO=EXPECTED, not {item!r}")
        golden.append(Golden(audio, expected))
    write_manifest(args.directory, name=args.name, kind=args.kind, version=args.version, runtime=args.runtime,
                   min_voxhome=args.min_voxhome, golden=tuple(golden))
    manifest = verify_bundle(args.directory)
    out = {"bundle": str(args.directory), "name": manifest.name, "kind": manifest.kind,
           "version": manifest.version, "files": len(manifest.files),
           "bytes": sum(f.size for f in manifest.files)}
    if args.archive:
        from ota.bundle import pack

        pack(args.directory, args.archive)
        out["archive"] = str(args.archive)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
