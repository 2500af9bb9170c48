#!/usr/bin/env bash
# The main job. Until the daemon lands: build aiotctl and run the software engine on a bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release --product aiotctl
MODEL=models/random/w24f1d16h1n1p1-w8a8.safetensors
.build/release/aiotctl check-vectors --model "$MODEL" --vectors "${MODEL%.safetensors}.vectors.txt"
