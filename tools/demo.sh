#!/usr/bin/env bash
# The main job: install what is missing, build, check the software engine on a bundled model, then
# run the daemon demo (local mosquitto, aiotd, the data set's test split replayed over MQTT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release --product aiotctl
MODEL=models/random/w24f1d16h1n1p1-w8a8.safetensors
.build/release/aiotctl check-vectors --model "$MODEL" --vectors "${MODEL%.safetensors}.vectors.txt"
bash tools/demo_daemon.sh
