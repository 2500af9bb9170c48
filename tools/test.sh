#!/usr/bin/env bash
# Runs every test of aiot-runtime: Python (numpy reference, exporter, training), Swift (engines,
# loader, board model, daemon against a real mosquitto), and the RTL (lint, Verilator, Icarus,
# synthesis fit). Installs what is missing first (tools/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

echo "== python: reference, exporter, model file"
.venv/bin/python -m pytest -q tools

echo "== swift: build and test"
swift build --build-tests
swift test --skip-build
