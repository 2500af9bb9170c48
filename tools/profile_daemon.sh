#!/usr/bin/env bash
# Where aiotd's time goes at QoS 1 flat out (one sensor): a release aiotd against a real mosquitto,
# driven by tools/bench/mqtt_load.c, observed by one tool. Counts rather than times where it can,
# because this shared machine's CPU figures move more than most changes do.
#
#   MODE=stat   bash tools/profile_daemon.sh   # perf stat: CPU, context switches, futex and all system calls
#   MODE=strace bash tools/profile_daemon.sh   # strace -c -f: system calls by name (slows aiotd down)
#   MODE=perf   bash tools/profile_daemon.sh   # perf record -g: then `perf report -i OUT/perf.data`
#   AIOTD_BIN=/path/to/aiotd N=20000 OUT=/tmp/prof ...    # another build (for A/B), readings, output dir
#
# Prints the figures per reading (stat and strace); the raw output stays in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-stat}; N=${N:-20000}
OUT=${OUT:-$(mktemp -d /tmp/aiot-profile.XXXXXX)}; mkdir -p "$OUT"
if [ -z "${AIOTD_BIN:-}" ]; then
  swift build -c release --product aiotd --static-swift-stdlib --scratch-path .build-static >/dev/null
  AIOTD_BIN=.build-static/release/aiotd
fi
MODEL=models/random/w24f1d16h1n1p1-w8a8.safetensors
pids=(); cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }; trap cleanup EXIT
gcc -O2 -o "$OUT/mqtt_load" tools/bench/mqtt_load.c $(pkg-config --cflags --libs libmosquitto) -lpthread
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{ echo "listener $PORT 127.0.0.1"; echo "allow_anonymous true"; echo "persistence false"
  echo "max_queued_messages 0"; echo "set_tcp_nodelay true"; [ "$(id -u)" = 0 ] && echo "user root"; } > "$OUT/mosquitto.conf"
"${MOSQUITTO_BIN:-/usr/sbin/mosquitto}" -c "$OUT/mosquitto.conf" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
cat > "$OUT/aiotd.toml" <<T
gateway = "bench"
[mqtt]
port = $PORT
client_id = "aiotd-bench"
[log]
directory = "$OUT/energy"
level = "warning"
[metrics]
port = 0
T
for s in warm run; do printf '[[stream]]\nsensor = "%s"\nmodel = "%s"\nmax_future_s = 3.0e9\n' "$s" "$MODEL" >> "$OUT/aiotd.toml"; done
"$AIOTD_BIN" --config "$OUT/aiotd.toml" 2>"$OUT/aiotd.log" & AP=$!; pids+=($AP)
mosquitto_sub -p "$PORT" -t aiot/bench/status -C 1 -W 20 > /dev/null
"$OUT/mqtt_load" daemon "$PORT" 2000 1 0 bench warm 24 > /dev/null   # warm: buffers, pools, first window
case "$MODE" in
  stat)   perf stat -e task-clock,context-switches,syscalls:sys_enter_futex,raw_syscalls:sys_enter -p "$AP" -o "$OUT/stat.txt" & PP=$! ;;
  strace) strace -c -f -p "$AP" -o "$OUT/strace.txt" & PP=$! ;;
  perf)   perf record -F 4000 -g -p "$AP" -o "$OUT/perf.data" 2>/dev/null & PP=$! ;;
  *) echo "MODE must be stat, strace or perf" >&2; exit 2 ;;
esac
sleep 0.5
"$OUT/mqtt_load" daemon "$PORT" "$N" 1 0 bench run 24 > "$OUT/load.json"
kill -INT "$PP"; wait "$PP" || true
python3 - "$MODE" "$OUT" "$N" <<'PY'
import json, re, sys
mode, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = json.load(open(f"{out}/load.json"))
print(f"{n} readings at QoS 1 flat out: {load['forecasts']}/{load['expected_forecasts']} forecasts, {load['readings_per_s']} readings/s")
if mode == "stat":
    t = open(f"{out}/stat.txt").read().replace(",", "")
    for key, label, scale in (("msec task-clock", "aiotd CPU µs", 1000.0), ("context-switches", "context switches", 1.0),
                              ("syscalls:sys_enter_futex", "futex calls", 1.0), ("raw_syscalls:sys_enter", "system calls", 1.0)):
        m = re.search(r"([\d.]+)\s+" + re.escape(key), t)
        print(f"  {label} per reading: {float(m.group(1)) * scale / n:.2f}" if m else f"  {label}: not counted (perf lacks the event)")
elif mode == "strace":
    for line in open(f"{out}/strace.txt"):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            print(f"  {f[-1]:16s} {int(f[3]) / n:6.2f} per reading" + (f" ({int(f[4]) / n:.2f} failed)" if len(f) == 6 else ""))
else:
    print(f"  perf report -i {out}/perf.data --no-children --sort comm,dso")
PY
echo "output: $OUT"
