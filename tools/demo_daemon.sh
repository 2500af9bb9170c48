#!/usr/bin/env bash
# The daemon demo: a local mosquitto on a loopback port, aiotd with configs/demo.toml and the bundled
# elecdemand model, the data set's real test split replayed over MQTT (tools/replay.py), forecasts
# printed beside actuals with a running error and latency summary, then an energy/latency summary.
# Stops cleanly (SIGTERM to aiotd, which drains and publishes its offline status).
# The model is elecdemand/W8A8S (contract v2: a linear skip path beside the Transformer), the one
# users would deploy: it beats every simple baseline and the float model on the test split, where v1
# W8A8 loses to ridge (docs/results.md); replay.py prints which model runs and that verdict first.
#   DEMO_RATE=100 (steps/s)  DEMO_LIMIT=400 (steps; "all" = the whole test split, 3504 steps)  DEMO_EVERY=25
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${DEMO_RATE:-100}
EVERY=${DEMO_EVERY:-25}
LIMIT=${DEMO_LIMIT:-400}
[ "$LIMIT" = all ] && LIMIT=
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
MOSQ=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
OUT=out/demo
mkdir -p "$OUT"
rm -rf "$OUT/energy"

swift build -c release --product aiotd
swift build -c release --product aiotctl

MODEL=models/elecdemand/W8A8S.safetensors
cp configs/demo.toml "$OUT/demo.toml"
[ -f "$MODEL" ] || { echo "demo: $MODEL is missing; restore it with git checkout -- models/" >&2; exit 1; }
PORT=$(sed -n 's/^port = \([0-9]*\).*/\1/p' "$OUT/demo.toml" | head -1)
if (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
  echo "demo: port $PORT on 127.0.0.1 is in use; stop whatever listens there or change [mqtt] port in configs/demo.toml" >&2
  exit 1
fi
{
  echo "listener $PORT 127.0.0.1"; echo "allow_anonymous true"; echo "persistence false"
  echo "max_queued_messages 0"; [ "$(id -u)" = 0 ] && echo "user root"
} > "$OUT/mosquitto.conf"

MOSQ_PID=; AIOTD_PID=
cleanup() {
  if [ -n "$AIOTD_PID" ] && kill -0 "$AIOTD_PID" 2>/dev/null; then kill -TERM "$AIOTD_PID"; wait "$AIOTD_PID" || true; fi
  if [ -n "$MOSQ_PID" ]; then kill "$MOSQ_PID" 2>/dev/null || true; wait "$MOSQ_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$MOSQ" -c "$OUT/mosquitto.conf" 2>"$OUT/mosquitto.log" & MOSQ_PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
.build/release/aiotd --check-config "$OUT/demo.toml"
.build/release/aiotd --config "$OUT/demo.toml" 2> >(tee "$OUT/aiotd.log" >&2) & AIOTD_PID=$!
mosquitto_sub -p "$PORT" -t aiot/demo/status -C 1 -W 20 > /dev/null

"$PY" tools/replay.py --model "$MODEL" --port "$PORT" --gateway demo --sensor elecdemand \
  --rate "$RATE" --show --every "$EVERY" ${LIMIT:+--limit "$LIMIT"}

kill -TERM "$AIOTD_PID"; wait "$AIOTD_PID"; echo "aiotd exited with status $?"; AIOTD_PID=
echo "retained status: $(mosquitto_sub -p "$PORT" -t aiot/demo/status -C 1 -W 5)"
.build/release/aiotctl accuracy "$OUT/energy"
.build/release/aiotctl energy "$OUT/energy" --svg "$OUT/energy.svg" --plot "$OUT/energy.png"
