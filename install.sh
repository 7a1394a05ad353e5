#!/bin/sh
# Install or upgrade voxhome on a Raspberry Pi OS / Debian / Jetson Linux board, from this checkout.
# Thin wrapper: as root it bootstraps /opt/voxhome/venv with this checkout installed, then
# `voxhome install` does the rest (packages, user, config, state dirs, units). Options pass through:
#   sudo ./install.sh                 install/upgrade and enable the units
#   sudo ./install.sh --uninstall     remove units and venv, keep /etc/voxhome and /var/lib/voxhome
#   ./install.sh --root /tmp/img --no-venv   prepare a root file system offline (no apt, no user;
#                                            runs with the python3 on PATH, e.g. a dev venv)
set -eu
cd "$(dirname "$0")"
PYTHON=python3
if [ "$(id -u)" = 0 ] && [ "${1:-}" != "--root" ]; then
    apt-get install -y --no-install-recommends python3-venv python3-dev gcc libasound2-dev
    VENV=/opt/voxhome/venv
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    # Enough to run the installer; `voxhome install` then adds the rest (extras, silero-vad).
    "$VENV/bin/pip" install --quiet --upgrade .
    PYTHON="$VENV/bin/python"
fi
# The checkout on PYTHONPATH: the installer reads its units and config template from here.
exec env PYTHONPATH="$PWD" "$PYTHON" -m device install "$@"
