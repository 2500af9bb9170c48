#!/usr/bin/env bash
# The main job: install what the demo needs (tools/setup.sh --demo: no training stack, no PyTorch),
# build, check the software engine on the bundled elecdemand model's test vectors, then run the
# daemon demo (local mosquitto, aiotd, the data set's test split replayed over MQTT). Bounded by
# default; DEMO_LIMIT=all replays the whole test split.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --demo
swift build -c release --product aiotctl
MODEL=models/elecdemand/W8A8S.safetensors
.build/release/aiotctl check-vectors --model "$MODEL" --vectors "${MODEL%.safetensors}.vectors.txt"
bash tools/demo_daemon.sh
