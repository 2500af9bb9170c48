#!/usr/bin/env bash
# Fleet benchmark (not a test): aiotd's resident memory with 100, 1,000 and 10,000 sensors served
# by one [[stream]] template (sensors = ["+"]) on one model, through a real mosquitto.
# Each size runs in a fresh daemon: RSS before the first reading, after every sensor has a full
# window and has forecast (WINDOW + 1 readings each), and the per-sensor increment.
#
#   bash tools/bench_fleet.sh                 # prints a markdown table
#   SIZES="100 1000" MODEL=models/... bash tools/bench_fleet.sh
#
# Targets (issue 12): RSS at 10,000 sensors <= 64 MB, <= 2 KB per sensor, first readings of
# 10,000 sensors handled within a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-100 1000 10000}
MODEL=${MODEL:-models/random/w12f2d8h2n2p3-w4a8.safetensors}   # the example config's model
OUT=$(mktemp -d /tmp/aiot-fleet.XXXXXX)
MOSQ=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$OUT"; }
trap cleanup EXIT

swift build -c release --product aiotd --static-swift-stdlib --scratch-path .build-static >/dev/null
AIOTD_BIN=.build-static/release/aiotd
gcc -O2 -o "$OUT/fleet_load" tools/bench/fleet_load.c $(pkg-config --cflags --libs libmosquitto) -lpthread
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "listener $PORT 127.0.0.1"; echo "allow_anonymous true"; echo "persistence false"
  echo "max_queued_messages 0"; echo "set_tcp_nodelay true"
  [ "$(id -u)" = 0 ] && echo "user root"
} > "$OUT/mosquitto.conf"
"$MOSQ" -c "$OUT/mosquitto.conf" 2>"$OUT/mosquitto.log" & pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done

read -r W FEATURES < <(python3 - "$MODEL" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
a = json.loads(json.loads(b[8:8 + n])['__metadata__']['aiot'])
print(a['shape']['window'], ",".join(f['name'] for f in a['features']))
PY
)
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
echo "model $MODEL (window $W, features $FEATURES); static release build; $(nproc) cores shared (load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| sensors | RSS idle | RSS with every sensor served | increment per sensor | first readings of all sensors acknowledged | all forecasts received | forecasts | aiotd CPU time (all threads, start to stop) | batched (limits.batch_windows = ${BATCH_WINDOWS:-64}) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
  gw="fleet$n"
  cat > "$OUT/$gw.toml" <<TOML
gateway = "$gw"
[mqtt]
port = $PORT
client_id = "aiotd-$gw"
[log]
directory = "$OUT/energy-$gw"
level = "notice"
[metrics]
port = 0
[limits]
max_sensors = 20000
queue_capacity = 4096
batch_windows = ${BATCH_WINDOWS:-64}
[[stream]]
name = "fleet"
sensors = ["+"]
model = "$MODEL"
max_future_s = 3.0e9
TOML
  "$AIOTD_BIN" --config "$OUT/$gw.toml" 2>"$OUT/$gw.log" & p=$!; pids+=($p)
  mosquitto_sub -p "$PORT" -t "aiot/$gw/status" -C 1 -W 20 > /dev/null
  r0=$(rss $p)
  res=$("$OUT/fleet_load" "$PORT" "$gw" "$n" $((W + 1)) "$FEATURES" "$W") || { echo "fleet_load failed: $res"; cat "$OUT/$gw.log"; exit 1; }
  r1=$(rss $p)
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$p/stat)
  kill -TERM $p; wait $p || true
  batched="$(grep -o 'batched=[^]]*windows in [0-9]* passes' "$OUT/$gw.log" | tail -1 | sed 's/^batched=//')"
  python3 - "$n" "$r0" "$r1" "$res" "$batched" "$cpu" <<'PY'
import json, sys
n, r0, r1, res = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {n:,} | {r0/1024:.1f} MiB | {r1/1024:.1f} MiB | {(r1-r0)*1024/n:,.0f} B | {res['first_readings_acked_s']:.2f} s "
      f"| {res['all_forecasts_s']:.2f} s | {res['forecasts']:,}/{res['expected_forecasts']:,} | {sys.argv[6]} s | {sys.argv[5] or '-'} |")
PY
done
