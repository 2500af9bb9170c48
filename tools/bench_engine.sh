#!/usr/bin/env bash
# Benchmarks the Swift integer engine beside ONNX Runtime and the numpy reference in one run and
# prints, per bundled model (named by its path under models/), microseconds per inference of each,
# the ratios Swift/ONNX Runtime and numpy/Swift, and the Swift engine's steady-state allocations per
# inference. ONNX Runtime runs the float ONNX export of the same trained network (models/<set>/
# NAME.onnx) on one thread; the random contract-test models have no ONNX export, so their rows
# compare Swift with numpy only.
# Usage: tools/bench_engine.sh [--filter TEXT] [--json] [--target-cpu CPU]
#   --target-cpu CPU  build the Swift side for CPU (e.g. native) instead of the portable default
#                     (x86-64 baseline, SSE2); ONNX Runtime picks its kernels for the host at run
#                     time either way. Built in .build-cpu-CPU so the portable build is kept.
# Environment: PYTHON (default .venv/bin/python, else python3); it needs numpy and onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

filter=()
json=0
cpu=
while (($#)); do
    case "$1" in
        --filter) filter=(--filter "$2"); shift 2 ;;
        --json) json=1; shift ;;
        --target-cpu) cpu=$2; shift 2 ;;
        *) echo "usage: tools/bench_engine.sh [--filter TEXT] [--json] [--target-cpu CPU]" >&2; exit 2 ;;
    esac
done

if ! "$PYTHON" -c "import numpy, onnxruntime" 2>/dev/null; then
    echo "bench_engine.sh: $PYTHON lacks numpy or onnxruntime; run tools/setup.sh or set PYTHON=" >&2
    exit 2
fi
if [ -n "$cpu" ]; then
    swift build -c release --product aiot-bench --scratch-path ".build-cpu-$cpu" -Xswiftc -target-cpu -Xswiftc "$cpu" >&2
    bench=".build-cpu-$cpu/release/aiot-bench"
else
    swift build -c release --product aiot-bench >&2
    bench=.build/release/aiot-bench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# One after the other, never concurrently: each gets the same (shared) machine.
"$bench" --json "${filter[@]}" >"$out/swift.json"
# Exit status 2 = no ONNX export among the selected models (e.g. --filter random): Swift and numpy only.
rc=0
"$PYTHON" -m tools.train.bench_onnx --json "${filter[@]}" >"$out/onnx.json" 2>"$out/onnx.err" || rc=$?
if [ "$rc" = 2 ]; then
    echo '{"models": []}' >"$out/onnx.json"
elif [ "$rc" != 0 ]; then
    cat "$out/onnx.err" >&2
    exit 1
fi
"$PYTHON" tools/bench_numpy.py --json "${filter[@]}" >"$out/numpy.json"

JSON=$json CPU="${cpu:-portable (x86-64 baseline)}" "$PYTHON" - "$out/swift.json" "$out/onnx.json" "$out/numpy.json" <<'PY'
import json, os, platform, sys
swift = json.load(open(sys.argv[1]))
onnx = json.load(open(sys.argv[2]))
numpy = {m["name"]: m for m in json.load(open(sys.argv[3]))["models"]}
ort = {m["name"]: m for m in onnx["models"]}
rows = []
for s in swift["models"]:
    n, o = numpy.get(s["name"]), ort.get(s["name"])
    r = {"name": s["name"],
         "swift_single_cpu_us": s["single_cpu_us"], "swift_single_us": s["single_us"],
         "swift_batch_cpu_us": s["batch_cpu_us"],
         "allocations_per_inference": max(s["allocations_per_inference_single"], s["allocations_per_inference_batch"])}
    if o:
        r.update({"ort_run_cpu_us": o["single_cpu_us"], "ort_run_us": o["single_us"],
                  "ort_single_cpu_us": o["single_bound_cpu_us"], "ort_single_us": o["single_bound_us"],
                  "ort_batch_cpu_us": o["batch_cpu_us"], "ort_batch_us": o["batch_us"],
                  "swift_over_ort_cpu": s["single_cpu_us"] / o["single_bound_cpu_us"],
                  "swift_over_ort_batch_cpu": s["single_cpu_us"] / o["batch_cpu_us"]})
    if n:
        r.update({"numpy_single_cpu_us": n["single_cpu_us"], "numpy_single_us": n["single_us"],
                  "numpy_over_swift_cpu": n["single_cpu_us"] / s["single_cpu_us"]})
    rows.append(r)
if os.environ["JSON"] == "1":
    print(json.dumps({"cpu": platform.processor() or platform.machine(), "swift_target_cpu": os.environ["CPU"], "numpy": json.load(open(sys.argv[3]))["numpy"],
                      "onnxruntime": onnx.get("onnxruntime"), "load_average": os.getloadavg(), "models": rows}))
    sys.exit(0)
def f(r, k, fmt):
    width = int(fmt.lstrip(">").split(".")[0])
    return format(r[k], fmt) if k in r else "-".rjust(width)
w = max(len(r["name"]) for r in rows)
print(f"{'':<{w}}  {'---------- CPU us per window ----------':>51}  {'--------- ratios ---------':>30}")
print(f"{'model':<{w}}  {'Swift':>7}  {'ORT':>7}  {'ORT run':>7}  {'ORT b64':>7}  {'numpy':>8}  {'Swift/ORT':>9}  {'(b64)':>6}  {'numpy/Swift':>11}  {'allocs':>6}")
for r in rows:
    print(f"{r['name']:<{w}}  {f(r, 'swift_single_cpu_us', '7.2f')}  {f(r, 'ort_single_cpu_us', '>7.2f')}  {f(r, 'ort_run_cpu_us', '>7.2f')}  {f(r, 'ort_batch_cpu_us', '>7.2f')}"
          f"  {f(r, 'numpy_single_cpu_us', '>8.1f')}  {f(r, 'swift_over_ort_cpu', '>9.2f')}  {f(r, 'swift_over_ort_batch_cpu', '>6.2f')}"
          f"  {f(r, 'numpy_over_swift_cpu', '>10.0f')}x  {r['allocations_per_inference']:>6.2f}")
print("Swift built for: " + os.environ["CPU"])
print("CPU us per inference of one window (process CPU time, median of 7 runs; CPU time excludes time spent")
print("descheduled on a shared machine). ORT = ONNX Runtime %s, one thread, sequential, one window per" % onnx.get("onnxruntime", "?"))
print("call through IOBinding (its cheapest call from Python; Swift/ORT is taken on it); ORT run = one window")
print("per session.run(); ORT b64 = per window inside one 64-window run, without the per-call overhead;")
print("'(b64)' is Swift over that. - = no ONNX export (random contract-test models).")
print("Load average %.1f %.1f %.1f" % os.getloadavg())
PY
