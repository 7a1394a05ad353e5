#!/usr/bin/env bash
# Set up everything voxhome needs on a fresh Debian / Raspberry Pi OS machine:
# system packages (apt), a dedicated virtualenv in .venv, and the project in it.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv python3-dev gcc
  libasound2-dev alsa-utils     # pyalsaaudio builds against ALSA; the file plugin stands in for a mic in tests
  libopus0                      # opuslib decodes the device's prompts
  libspeexdsp-dev               # acoustic echo cancellation
  mosquitto openssl             # the broker for the demo and the tests (openssl makes TLS test certs)
  espeak-ng flite festival festvox-kallpc16k sox libsox-fmt-all   # speech synthesis (festival needs a voice)
  festvox-kdlpc16k festvox-us-slt-hts   # more festival voices for the held-out evaluation sets
  systemd                       # systemd-analyze for the unit checks
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  [[ "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # mosquitto's package starts a system broker on 1883; the tests and the demo run their own.
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
EXTRAS=${VOXHOME_EXTRAS:-test,build,bench}
stamp=.venv/.voxhome-installed
want="$(sha256sum setup.cfg | cut -d' ' -f1) $EXTRAS"
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
  # silero-vad's wheel declares torch, which we never import: we only need its ONNX file.
  # (Same pin as device/system/install.py NO_DEPS; tests/appliance/test_install.py keeps them equal.)
  .venv/bin/python -m pip install -q --no-deps "silero-vad==6.2.3"
  # Wake phrases use efficientword-net's ONNX file and feature code only, not its pyaudio engine.
  .venv/bin/python -m pip install -q --no-deps "efficientword-net==1.0.5"
  echo "$want" > $stamp
fi
