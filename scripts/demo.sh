#!/usr/bin/env bash
# Set up (apt + .venv) and run the built-in demo on synthesized speech.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/voxhome demo "$@"
