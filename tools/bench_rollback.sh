#!/usr/bin/env bash
# What a model trial costs (docs/rollback.md): a release aiotd behind a real mosquitto, one stream
# (sensors = ["+"]), QoS 1 readings flat out. CPU time per reading (user + system, all threads)
# with no trial, and with a trial running (an equal model of another identity switched in by SIGHUP,
# rollback.steps large enough that the trial outlasts the run: every window is also run on the
# previous model); heap allocations per reading on each thread in both states (LD_PRELOAD counter,
# runs of N/10 and 2N/10 readings: the difference over N/10); the resident memory a trial adds to a
# fleet of SENSORS sensors with full windows (RSS before and after the switch).
#
#   bash tools/bench_rollback.sh                 # N=20000
#   AIOTD_BIN=/path/to/aiotd bash tools/bench_rollback.sh
# Not run by CI (a benchmark); needs what tools/bench_daemon.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
SENSORS=${SENSORS:-10000}
PARTS=${PARTS:-cpu allocs fleet}   # a subset: PARTS=allocs
MODEL=${MODEL:-models/random/w24f1d16h1n1p1-w8a8.safetensors}
OUT=$(mktemp -d /tmp/aiot-rollback.XXXXXX)
MOSQ=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$OUT"; }
trap cleanup EXIT

if [ -z "${AIOTD_BIN:-}" ]; then
  swift build -c release --product aiotd >/dev/null
  AIOTD_BIN=.build/release/aiotd
fi
gcc -O2 -o "$OUT/mqtt_load" tools/bench/mqtt_load.c $(pkg-config --cflags --libs libmosquitto) -lpthread
gcc -O2 -shared -fPIC -o "$OUT/malloc_count.so" tools/bench/malloc_count.c -lpthread
gcc -O2 -o "$OUT/fleet_load" tools/bench/fleet_load.c $(pkg-config --cflags --libs libmosquitto) -lpthread
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "listener $PORT 127.0.0.1"; echo "allow_anonymous true"; echo "persistence false"
  echo "max_queued_messages 0"; echo "set_tcp_nodelay true"
  [ "$(id -u)" = 0 ] && echo "user root"
} > "$OUT/mosquitto.conf"
"$MOSQ" -c "$OUT/mosquitto.conf" 2>"$OUT/mosquitto.log" & pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done

# The same model under another identity: one head weight's low bit flipped (same shape and input).
cp "$MODEL" "$OUT/a.safetensors"
python3 - "$MODEL" "$OUT/b.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
off = json.loads(b[8:8 + n])["head.weight"]["data_offsets"][0]
b[8 + n + off] ^= 1
open(sys.argv[2], "wb").write(b)
PY
read -r W FEATURES < <(python3 - "$MODEL" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
a = json.loads(json.loads(b[8:8 + n])['__metadata__']['aiot'])
print(a['shape']['window'], ",".join(f['name'] for f in a['features']))
PY
)

write_config() {  # $1 = gateway
  cat > "$OUT/$1.toml" <<TOML
gateway = "$1"
[mqtt]
port = $PORT
client_id = "aiotd-$1"
[log]
directory = "$OUT/energy-$1"
level = "notice"
[metrics]
port = 0
[limits]
max_sensors = 20000
queue_capacity = 4096
[rollback]
steps = 1000000
[[stream]]
name = "bench"
sensors = ["+"]
model = "$OUT/$1.safetensors"
max_future_s = 3.0e9
TOML
  cp "$OUT/a.safetensors" "$OUT/$1.safetensors"
}
start() {  # $1 = gateway, $2 = preload or ""
  write_config "$1"
  if [ -n "$2" ]; then LD_PRELOAD="$2" "$AIOTD_BIN" --config "$OUT/$1.toml" 2>"$OUT/$1.log" & else "$AIOTD_BIN" --config "$OUT/$1.toml" 2>"$OUT/$1.log" & fi
  D=$!; pids+=($D)
  mosquitto_sub -p "$PORT" -t "aiot/$1/status" -C 1 -W 20 > /dev/null
}
switch() {  # $1 = gateway: the equal model in, SIGHUP, wait for the trial
  cp "$OUT/b.safetensors" "$OUT/$1.safetensors"
  kill -HUP $D
  for _ in $(seq 200); do grep -q "model switched" "$OUT/$1.log" && return; sleep 0.05; done
  echo "no switch: $(tail -5 "$OUT/$1.log")" >&2; exit 1
}
cpu() { awk '{print $14 + $15}' /proc/$D/stat; }
load() { "$OUT/mqtt_load" daemon "$PORT" "$2" 1 0 "$1" "$3" "$W"; }

us=(- - -); none=-; trial=-; rss=0; f0=0; f1=0; f2=0; shadow_us=-
# 1. CPU per reading: two runs without a trial (the second shows the run-to-run spread), then one
# with; and the shadow runs' own CPU time per window, as the daemon counts it (status command).
if [[ " $PARTS " == *" cpu "* ]]; then
us=()
start cpu ""
declare -a us
for s in s0 s1 trial; do
  [ "$s" = trial ] && switch cpu
  c0=$(cpu); r=$(load cpu "$N" "$s"); c1=$(cpu)
  us+=("$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK) * 1e6 / $N, 1))")")
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['forecasts']==d['expected_forecasts'], d" "$r"
done
rss=$(awk '/VmHWM/ {print $2}' /proc/$D/status)
grep -q "model trial ended\|rolled back" "$OUT/cpu.log" && { echo "the trial ended during the run" >&2; exit 1; }
mosquitto_sub -p "$PORT" -t aiot/cpu/reply/b -C 1 -W 10 > "$OUT/reply" & s=$!
sleep 0.3; mosquitto_pub -p "$PORT" -t aiot/cpu/cmd/status -q 1 -m '{"id":"b"}'; wait $s
shadow_us=$(python3 -c "
import json; m = json.load(open('$OUT/reply'))['status']['models'][0]['model_switch']['shadow']
print(f\"{m['cpu_s'] * 1e6 / m['inferences']:.1f} µs per window ({m['inferences']} windows)\")")
kill -TERM $D; wait $D || true
fi

# 2. Allocations per reading by thread, without and with a trial (each: a fresh daemon, 100
# readings first, then the switch or not, then N/10 or 2N/10 readings on a new sensor).
allocs() {  # $1 = gateway, $2 = readings, $3 = trial|none
  start "$1" "$OUT/malloc_count.so"
  load "$1" 100 warm > /dev/null
  [ "$3" = trial ] && switch "$1"
  load "$1" "$2" s > /dev/null
  kill -TERM $D; wait $D || true
  grep '^malloc_count' "$OUT/$1.log" | sed 's/^malloc_count //' | awk '{ c = $NF; $NF = ""; n[$0] += c } END { for (t in n) print t "=" n[t] }'
}
A=$((N / 10))
per_reading() {  # $1 = trial|none
  allocs "a1${1:0:1}" "$A" "$1" > "$OUT/x1"; allocs "a2${1:0:1}" "$((2 * A))" "$1" > "$OUT/x2"
  python3 - "$OUT/x1" "$OUT/x2" "$A" <<'PY'
import re, sys
def load(p):
    d = {}
    for l in open(p):
        t, n = l.rstrip("\n").rsplit("=", 1)
        d[re.sub(r"a[12][tn]", "G", t.strip())] = int(n)
    return d
a, b, n = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print("; ".join(f"{t}: {(b.get(t, 0) - a.get(t, 0)) / n:.2f}" for t in sorted(set(a) | set(b)) if abs(b.get(t, 0) - a.get(t, 0)) / n >= 0.05))
PY
}
if [[ " $PARTS " == *" allocs "* ]]; then none=$(per_reading none); trial=$(per_reading trial); fi

# 3. Memory: SENSORS sensors with full windows, then a switch that puts all of them on trial.
if [[ " $PARTS " == *" fleet "* ]]; then
rss() { awk '/VmRSS/ {print $2}' /proc/$D/status; }
start fleet ""
f0=$(rss)
"$OUT/fleet_load" "$PORT" fleet "$SENSORS" $((W + 1)) "$FEATURES" "$W" > /dev/null
f1=$(rss)
switch fleet
sleep 1
f2=$(rss)
kill -TERM $D; wait $D || true
fi

echo "machine: $(uname -m), $(nproc) cores shared with other jobs (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)); model $MODEL; $N readings per run, QoS 1, flat out; $AIOTD_BIN"
echo
echo "| measurement | no trial | trial running (previous model shadow-run on every window) |"
echo "|---|---|---|"
echo "| aiotd CPU time per reading (user + system, all threads) | ${us[0]} µs, ${us[1]} µs (two runs) | ${us[2]} µs |"
echo "| shadow run's own CPU time (thread CPU around the previous model's inference, counted by aiotd) | | $shadow_us |"
echo "| heap allocations per reading, by thread | $none | $trial |"
echo "| aiotd peak RSS (VmHWM) after the three CPU runs | | $((rss / 1024)) MiB |"
echo "| RSS of $SENSORS sensors with full windows (idle: $((f0 / 1024)) MiB) | $((f1 / 1024)) MiB | $((f2 / 1024)) MiB: +$(( (f2 - f1) * 1024 / SENSORS )) B per sensor on trial |"
