#!/usr/bin/env bash
# Benchmarks the Swift software engine against the numpy reference in one run and prints, per
# committed model, microseconds per inference of each, their ratio and the Swift engine's
# steady-state allocations per inference. Usage: tools/bench_engine.sh [--filter TEXT] [--json]
# Environment: PYTHON (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

filter=()
json=0
while (($#)); do
    case "$1" in
        --filter) filter=(--filter "$2"); shift 2 ;;
        --json) json=1; shift ;;
        *) echo "usage: tools/bench_engine.sh [--filter TEXT] [--json]" >&2; exit 2 ;;
    esac
done

swift build -c release --product aiot-bench >&2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
.build/release/aiot-bench --json "${filter[@]}" >"$out/swift.json"
"$PYTHON" tools/bench_numpy.py --json "${filter[@]}" >"$out/numpy.json"

JSON=$json "$PYTHON" - "$out/swift.json" "$out/numpy.json" <<'PY'
import json, os, platform, sys
swift = {m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}
numpy = json.load(open(sys.argv[2]))
rows = []
for n in numpy["models"]:
    s = swift.get(n["name"])
    if s is None:
        continue
    rows.append({"name": n["name"],
                 "swift_single_us": s["single_us"], "swift_batch_us": s["batch_us"],
                 "swift_single_cpu_us": s["single_cpu_us"], "swift_batch_cpu_us": s["batch_cpu_us"],
                 "numpy_single_us": n["single_us"], "numpy_batch_us": n["batch_us"],
                 "numpy_single_cpu_us": n["single_cpu_us"], "numpy_batch_cpu_us": n["batch_cpu_us"],
                 "ratio_single_wall": n["single_us"] / s["single_us"],
                 "ratio_single_cpu": n["single_cpu_us"] / s["single_cpu_us"],
                 "allocations_per_inference": max(s["allocations_per_inference_single"], s["allocations_per_inference_batch"])})
if os.environ["JSON"] == "1":
    print(json.dumps({"cpu": platform.processor() or platform.machine(), "numpy": numpy["numpy"],
                      "load_average": os.getloadavg(), "models": rows}))
    sys.exit(0)
w = max(len(r["name"]) for r in rows)
print(f"{'':<{w}}  {'--- Swift engine (us) ---':>31}  {'-- numpy (us) --':>19}  {'numpy/Swift':>13}")
print(f"{'model':<{w}}  {'wall':>9}  {'batch':>9}  {'cpu':>9}  {'wall':>9}  {'cpu':>9}  {'wall':>6}  {'cpu':>6}  {'allocs/inf':>10}")
for r in rows:
    print(f"{r['name']:<{w}}  {r['swift_single_us']:>9.2f}  {r['swift_batch_us']:>9.2f}  {r['swift_single_cpu_us']:>9.2f}"
          f"  {r['numpy_single_us']:>9.1f}  {r['numpy_single_cpu_us']:>9.1f}"
          f"  {r['ratio_single_wall']:>5.0f}x  {r['ratio_single_cpu']:>5.0f}x  {r['allocations_per_inference']:>10.2f}")
print("us per inference, median of 7 runs: wall time and process CPU time (CPU time is steadier on a shared machine);")
print("batch = SoftwareEngine.inferBatch over the 64 vectors; load average %.1f %.1f %.1f" % os.getloadavg())
PY
