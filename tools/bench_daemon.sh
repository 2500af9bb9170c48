#!/usr/bin/env bash
# Daemon benchmark: readings through a real mosquitto into a release aiotd and forecasts back out,
# beside the raw broker loopback rate measured in the same run (the ceiling), and the same flat-out
# runs again with aiotd and the driver on the broker's Unix socket (mqtt.unix_socket) instead of
# loopback TCP, beside the C clients' ceiling on the socket.
#
#   bash tools/bench_daemon.sh            # prints a markdown table
#   N=50000 RATE_N=10000 bash tools/bench_daemon.sh
#   AIOTD_BIN=/path/to/aiotd bash tools/bench_daemon.sh   # a prebuilt aiotd (no build)
#
# Needs: mosquitto, mosquitto-clients, libmosquitto-dev, gcc (tools/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50000}            # readings per throughput run
RATE_N=${RATE_N:-10000}  # readings in the fixed-rate latency run (at 1000/s)
RATE10_N=${RATE10_N:-$((RATE_N * 2))}  # readings in the 10,000/s latency run
PEER=${PEER:-1}          # 0: skip the Python peer (paho + ONNX Runtime, tools/bench/peer_gateway.py)
PEER_MODEL=${PEER_MODEL:-models/elecdemand/W8A8}  # its float export (.onnx) and model file: same W, d, layers
MODEL=${MODEL:-models/random/w24f1d16h1n1p1-w8a8.safetensors}
OUT=$(mktemp -d /tmp/aiot-bench.XXXXXX)
MOSQ=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$OUT"; }
trap cleanup EXIT

# The static build is what a gateway would install: one file, and no shared Swift/Foundation
# libraries resident (they are most of a dynamic build's RSS).
# AIOTD_BIN=path runs that binary instead (e.g. another commit's build, for a before/after pair).
if [ -z "${AIOTD_BIN:-}" ]; then
  swift build -c release --product aiotd --static-swift-stdlib --scratch-path .build-static >/dev/null
  AIOTD_BIN=.build-static/release/aiotd
fi
gcc -O2 -o "$OUT/mqtt_load" tools/bench/mqtt_load.c $(pkg-config --cflags --libs libmosquitto) -lpthread
gcc -O2 -shared -fPIC -o "$OUT/malloc_count.so" tools/bench/malloc_count.c -lpthread
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "listener $PORT 127.0.0.1"; echo "allow_anonymous true"; echo "persistence false"
  echo "max_queued_messages 0"     # QoS 1 lossless for a subscriber that falls behind
  echo "set_tcp_nodelay true"
  echo "listener 0 $OUT/mqtt.sock"  # for the Unix-socket runs
  [ "$(id -u)" = 0 ] && echo "user root"
} > "$OUT/mosquitto.conf"
"$MOSQ" -c "$OUT/mosquitto.conf" 2>"$OUT/mosquitto.log" & pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done

# 1. The ceiling: raw broker loopback, C client (libmosquitto) and mosquitto_pub/mosquitto_sub.
loop0=$("$OUT/mqtt_load" loop "$PORT" "$N" 0)
loop1=$("$OUT/mqtt_load" loop "$PORT" "$N" 1)
uloop0=$("$OUT/mqtt_load" loop "unix:$OUT/mqtt.sock" "$N" 0)   # the same on the broker's Unix socket
uloop1=$("$OUT/mqtt_load" loop "unix:$OUT/mqtt.sock" "$N" 1)
head -c 40 /dev/zero | tr '\0' x > "$OUT/line"; for _ in $(seq "$N"); do cat "$OUT/line"; echo; done > "$OUT/lines"
mosquitto_sub -p "$PORT" -t bench/cli -q 1 -C "$N" > /dev/null & sub=$!
sleep 0.3
t0=$(date +%s.%N)
mosquitto_pub -p "$PORT" -t bench/cli -q 1 -l < "$OUT/lines"
wait $sub
t1=$(date +%s.%N)
cli=$(python3 -c "print(round($N/($t1-$t0)))")

# 2. The daemon: one stream per run so every run starts a fresh window.
write_config() {  # $1 = gateway, $2 = file, $3 = unix: the broker's Unix socket instead of TCP
  cat > "$2" <<TOML
gateway = "$1"
[mqtt]
$(if [ "${3:-}" = unix ]; then echo "unix_socket = \"$OUT/mqtt.sock\""; else echo "port = $PORT"; fi)
client_id = "aiotd-$1"
[log]
directory = "$OUT/energy-$1"
level = "warning"
[metrics]
port = 0
TOML
  for s in q0 q1 rate rate10k; do printf '[[stream]]\nsensor = "%s"\nmodel = "%s"\nmax_future_s = 3.0e9\n' "$s" "$MODEL" >> "$2"; done
}
write_config bench "$OUT/aiotd.toml"
"$AIOTD_BIN" --config "$OUT/aiotd.toml" 2>"$OUT/aiotd.log" & AIOTD=$!; pids+=($AIOTD)
mosquitto_sub -p "$PORT" -t aiot/bench/status -C 1 -W 20 > /dev/null
W=$(python3 -c "import json,struct;b=open('$MODEL','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(json.loads(b[8:8+n])['__metadata__']['aiot'])['shape']['window'])")
# aiotd's own CPU time (user + system, all threads) over both flat-out runs: unlike readings/s it
# does not depend on how much of the two cores other jobs leave.
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
# Per thread: "name ticks" for every thread of process $1 (the name is what top -H shows).
threads() { for f in /proc/$1/task/*/stat; do sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1|\2/' "$f" | awk -F'|' '{split($2, a, " "); gsub(/ /, "_", $1); print $1, a[11] + a[12]}'; done 2>/dev/null; }
c0=$(cpu $AIOTD); threads $AIOTD > "$OUT/t0"
d0=$("$OUT/mqtt_load" daemon "$PORT" "$N" 0 0 bench q0 "$W")
d1=$("$OUT/mqtt_load" daemon "$PORT" "$N" 1 0 bench q1 "$W")
cpu_us=$(python3 -c "print(round(($(cpu $AIOTD) - $c0) / $(getconf CLK_TCK) * 1e6 / (2 * $N), 1))")
threads $AIOTD > "$OUT/t1"
per_thread=$(python3 - "$OUT/t0" "$OUT/t1" "$N" "$(getconf CLK_TCK)" <<'PY'
import sys, collections
def load(p):
    d = collections.Counter()
    for l in open(p):
        name, ticks = l.rsplit(" ", 1)
        # Name the two network threads (mq:<client id>) by role; the rest by their own names.
        d["publishing network" if name.startswith("mq:") and name.endswith("-pub") else "intake network" if name.startswith("mq:") else name] += int(ticks)
    return d
a, b, n, hz = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = sorted(((t, (b[t] - a.get(t, 0)) / hz * 1e6 / (2 * n)) for t in b), key=lambda r: -r[1])
print("; ".join(f"{t} {us:.1f}" for t, us in rows if us >= 0.05))
PY
)
r1=$("$OUT/mqtt_load" daemon "$PORT" "$RATE_N" 1 1000 bench rate "$W")
r10=$("$OUT/mqtt_load" daemon "$PORT" "$RATE10_N" 1 10000 bench rate10k "$W")
rss=$(awk '/VmHWM/ {print $2}' /proc/$AIOTD/status)
lines=$(cat "$OUT"/energy-bench/*.jsonl | wc -l)
kill -TERM $AIOTD; t0=$(date +%s.%N); rc=0; wait $AIOTD || rc=$?; t1=$(date +%s.%N)
stop=$(python3 -c "print(round($t1-$t0,2))")

# 2b. The same two flat-out runs with aiotd and the driver on the broker's Unix socket.
write_config benchu "$OUT/aiotd-unix.toml" unix
"$AIOTD_BIN" --config "$OUT/aiotd-unix.toml" 2>"$OUT/aiotd-unix.log" & AU=$!; pids+=($AU)
mosquitto_sub -p "$PORT" -t aiot/benchu/status -C 1 -W 20 > /dev/null
cu0=$(cpu $AU)
u0=$("$OUT/mqtt_load" daemon "unix:$OUT/mqtt.sock" "$N" 0 0 benchu q0 "$W")
u1=$("$OUT/mqtt_load" daemon "unix:$OUT/mqtt.sock" "$N" 1 0 benchu q1 "$W")
cpu_unix=$(python3 -c "print(round(($(cpu $AU) - $cu0) / $(getconf CLK_TCK) * 1e6 / (2 * $N), 1))")
kill -TERM $AU; wait $AU || true

# 3. Allocations per reading, by thread: a fresh daemon under an LD_PRELOAD counter, with N/10 and
# 2N/10 readings at QoS 1 and 2,000/s; the difference over N/10 is the per-reading figure.
allocs() {  # $1 = gateway name, $2 = readings; prints "thread count" lines
  write_config "$1" "$OUT/$1.toml"
  LD_PRELOAD="$OUT/malloc_count.so" "$AIOTD_BIN" --config "$OUT/$1.toml" 2>"$OUT/$1.log" & local p=$!
  mosquitto_sub -p "$PORT" -t "aiot/$1/status" -C 1 -W 20 > /dev/null
  "$OUT/mqtt_load" daemon "$PORT" "$2" 1 2000 "$1" q1 "$W" > /dev/null
  kill -TERM $p; wait $p || true
  grep '^malloc_count' "$OUT/$1.log" | sed 's/^malloc_count //' | awk '{ c = $NF; $NF = ""; n[$0] += c } END { for (t in n) print t "=" n[t] }'
}
A=$((N / 10))
allocs alloc1 "$A" > "$OUT/a1"; allocs alloc2 "$((2 * A))" > "$OUT/a2"
per_reading=$(python3 - "$OUT/a1" "$OUT/a2" "$A" <<'PY'
import sys
def load(p):
    d = {}
    for l in open(p):
        t, n = l.rstrip("\n").rsplit("=", 1)
        d[t.strip().replace("alloc1", "G").replace("alloc2", "G")] = int(n)
    return d
a, b, n = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print("; ".join(f"{t}: {(b.get(t, 0) - a.get(t, 0)) / n:.2f}" for t in sorted(set(a) | set(b)) if abs(b.get(t, 0) - a.get(t, 0)) / n >= 0.05))
PY
)

# 4. The peer: the same driver and broker against a Python gateway (paho-mqtt + ONNX Runtime, one
# thread) running the float export of a model of the same window, width and depth.
peer='{}'
if [ "$PEER" = 1 ]; then
  PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python
  if "$PY" -c 'import paho.mqtt, onnxruntime' 2>/dev/null && [ -f "$PEER_MODEL.onnx" ]; then
    "$PY" tools/bench/peer_gateway.py "$PORT" peer "$PEER_MODEL.onnx" "$PEER_MODEL.safetensors" 60 2>"$OUT/peer.log" & PP=$!; pids+=($PP)
    mosquitto_sub -p "$PORT" -t aiot/peer/status -C 1 -W 30 > /dev/null
    pc0=$(cpu $PP)
    p0=$("$OUT/mqtt_load" daemon "$PORT" "$N" 0 0 peer q0 "$W" || true)
    p1=$("$OUT/mqtt_load" daemon "$PORT" "$N" 1 0 peer q1 "$W" || true)
    pcpu=$(python3 -c "print(round(($(cpu $PP) - $pc0) / $(getconf CLK_TCK) * 1e6 / (2 * $N), 1))")
    pr1=$("$OUT/mqtt_load" daemon "$PORT" "$RATE_N" 1 1000 peer rate "$W" || true)
    prss=$(awk '/VmHWM/ {print $2}' /proc/$PP/status)
    kill $PP; wait $PP 2>/dev/null || true
    peer=$(python3 -c "import json,sys; print(json.dumps({'q0': json.loads(sys.argv[1]), 'q1': json.loads(sys.argv[2]), 'rate': json.loads(sys.argv[3]), 'cpu_us': float(sys.argv[4]), 'rss_kib': int(sys.argv[5]), 'model': sys.argv[6]}))" \
      "$p0" "$p1" "$pr1" "$pcpu" "$prss" "$PEER_MODEL")
  else
    echo "bench_daemon: peer skipped (needs paho-mqtt and onnxruntime in $PY, and $PEER_MODEL.onnx; tools/setup.sh installs them)" >&2
  fi
fi

python3 - "$loop0" "$loop1" "$cli" "$d0" "$d1" "$r1" "$rss" "$lines" "$rc" "$stop" "$N" "$MODEL" "$per_reading" "$(cut -d' ' -f1-3 /proc/loadavg)" "$cpu_us" "$r10" "$per_thread" "$peer" "$(grep -o 'batched=[^]]*windows in [0-9]* passes' "$OUT/aiotd.log" | tail -1 | sed 's/^batched=//')" "$u0" "$u1" "$cpu_unix" "$uloop0" "$uloop1" <<'PY'
import json, sys, platform, os
l0, l1, d0, d1, r1 = (json.loads(sys.argv[i]) for i in (1, 2, 4, 5, 6))
cli, rss, lines, rc, stop, n, model = int(sys.argv[3]), int(sys.argv[7]), int(sys.argv[8]), sys.argv[9], sys.argv[10], sys.argv[11], sys.argv[12]
per_reading, load, cpu_us = sys.argv[13], sys.argv[14], sys.argv[15]
r10, per_thread, peer = json.loads(sys.argv[16]), sys.argv[17], json.loads(sys.argv[18])
batched = sys.argv[19] or "not reported"
u0, u1, cpu_unix = json.loads(sys.argv[20]), json.loads(sys.argv[21]), float(sys.argv[22])
ul0, ul1 = json.loads(sys.argv[23]), json.loads(sys.argv[24])
print(f"machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average at the end: {load}); "
      f"model {model}; {n} readings per run; static release build")
print()
print("| measurement | value | ceiling in the same run | ratio |")
print("|---|---|---|---|")
print(f"| raw loopback, C clients (libmosquitto), QoS 0, 40 B | {l0['msg_per_s']:,.0f} msg/s | | |")
print(f"| raw loopback, C clients (libmosquitto), QoS 1, 40 B | {l1['msg_per_s']:,.0f} msg/s | | |")
print(f"| raw loopback, mosquitto_pub -l / mosquitto_sub, QoS 1, 40 B | {cli:,} msg/s | | |")
# Each reading is two messages through the broker (reading in, forecast out): the bound is half
# the same run's C-client ceiling; the ratio column is against that bound.
for d, l in ((d0, l0), (d1, l1)):
    print(f"| aiotd end to end, QoS {d['qos']}, flat out: readings/s, every forecast received | {d['readings_per_s']:,.0f} /s "
          f"({d['forecasts']}/{d['expected_forecasts']} forecasts) | {l['msg_per_s'] / 2:,.0f} /s (half the QoS {d['qos']} ceiling) | {d['readings_per_s'] / (l['msg_per_s'] / 2):.2f} |")
print(f"| aiotd CPU time per reading (user + system, all its threads), over both flat-out runs | {cpu_us} µs | | |")
print(f"| ... of which per thread (µs per reading) | {per_thread} | | |")
# The Unix-socket runs (aiotd and the driver on the socket): against half the C clients' ceiling on
# the socket, and beside the TCP run of the same invocation.
print(f"| raw loopback on the broker's Unix socket, C clients, QoS 0 / QoS 1, 40 B | {ul0['msg_per_s']:,.0f} / {ul1['msg_per_s']:,.0f} msg/s | | |")
for u, d, l in ((u0, d0, ul0), (u1, d1, ul1)):
    print(f"| aiotd on the broker's Unix socket, QoS {u['qos']}, flat out: readings/s (over TCP: {d['readings_per_s']:,.0f} /s) | {u['readings_per_s']:,.0f} /s "
          f"({u['forecasts']}/{u['expected_forecasts']} forecasts) | {l['msg_per_s'] / 2:,.0f} /s (half the socket's QoS {u['qos']} ceiling) | {u['readings_per_s'] / (l['msg_per_s'] / 2):.2f} |")
print(f"| aiotd on the broker's Unix socket: CPU time per reading, both flat-out runs | {cpu_unix} µs | {cpu_us} µs over TCP | {cpu_unix / float(cpu_us):.2f} |")
for r, rate in ((r1, "1,000"), (r10, "10,000")):
    print(f"| aiotd reading→forecast latency through the broker at {rate} readings/s, QoS 1: p50 / p99 | "
          f"{r['p50_us']:.0f} µs / {r['p99_us']:.0f} µs ({r['forecasts']}/{r['expected_forecasts']} forecasts) | | |")
print(f"| aiotd peak RSS (VmHWM) after all three runs | {rss/1024:.1f} MiB | | |")
print(f"| energy log records written (one per inference) | {lines:,} | | |")
print(f"| SIGTERM to exit | {stop} s, exit status {rc} | | |")
print(f"| heap allocations per reading, by thread | {per_reading} | | |")
print(f"| windows run in batched passes (2 or more windows per pass; from aiotd's stop line) | {batched} | | |")
if peer:
    print()
    print(f"Peer in the same run: Python paho-mqtt + ONNX Runtime (one thread), float export of {peer['model']}; "
          "same broker, same driver. Ratio = aiotd / peer (throughput: higher is better for aiotd above 1; CPU and latency: below 1).")
    print()
    print("| measurement | aiotd | peer | ratio |")
    print("|---|---|---|---|")
    for q, d in ((0, d0), (1, d1)):
        p = peer[f"q{q}"]
        print(f"| end to end, QoS {q}, flat out | {d['readings_per_s']:,.0f} /s ({d['forecasts']}/{d['expected_forecasts']}) | "
              f"{p['readings_per_s']:,.0f} /s ({p['forecasts']}/{p['expected_forecasts']}) | {d['readings_per_s'] / p['readings_per_s']:.2f} |")
    print(f"| CPU time per reading, both flat-out runs | {cpu_us} µs | {peer['cpu_us']} µs | {float(cpu_us) / peer['cpu_us']:.2f} |")
    pr = peer["rate"]
    print(f"| latency at 1,000 readings/s, QoS 1: p99 | {r1['p99_us']:.0f} µs | {pr['p99_us']:.0f} µs ({pr['forecasts']}/{pr['expected_forecasts']}) | {r1['p99_us'] / pr['p99_us']:.2f} |")
    print(f"| peak RSS | {rss / 1024:.1f} MiB | {peer['rss_kib'] / 1024:.1f} MiB | {rss / peer['rss_kib']:.2f} |")
PY
