#!/usr/bin/env bash
# Benchmarks the Swift integer engine beside ONNX Runtime and the numpy reference in one run and
# prints, per bundled model (named by its path under models/), CPU microseconds per inference at
# batch 1 and per window at batch 64 for every kernel variant this CPU runs (portable = the Swift
# kernel for the baseline instruction set; avx2, avx512 = the C variants of Sources/CKernels), which
# of them the package picks here ("auto"), ONNX Runtime at batch 1 and 64, numpy, the ratios, and
# the engine's steady-state allocations. ONNX Runtime runs the float ONNX export of the same trained
# network (models/<set>/NAME.onnx) on one thread; the random contract-test models have no ONNX
# export, so their rows have no ONNX Runtime figures.
#
# The Swift side is built exactly as tools/package.sh builds the package (release,
# --static-swift-stdlib, scratch path .build-static), so the figures are the packaged binary's.
# Usage: tools/bench_engine.sh [--filter TEXT] [--json] [--no-numpy] [--target-cpu CPU] [--callgrind]
#                               [--against BINARY]
#   --target-cpu CPU  build the Swift side for CPU (e.g. native) instead of the package's portable
#                     flags, in .build-cpu-CPU
#   --no-numpy        skip the numpy reference (about a minute on all models)
#   --callgrind       also count instructions per window (valgrind's callgrind: independent of the
#                     machine's load) for every variant, batch 1 and batch 64, on the default-shape
#                     model (CALLGRIND_MODEL to change it); needs valgrind (apt-get install valgrind)
#   --against BINARY  alternate runs of this build and another aiot-bench (e.g. one built from an
#                     older commit) on the default-shape model, 4 rounds per variant both have: A/B
#                     on the same loaded machine; with --callgrind, BINARY is counted as well
# Environment: PYTHON (default .venv/bin/python, else python3); it needs numpy and onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

filter=()
json=0
cpu=
numpy=1
callgrind=0
against=
while (($#)); do
    case "$1" in
        --filter) filter=(--filter "$2"); shift 2 ;;
        --json) json=1; shift ;;
        --target-cpu) cpu=$2; shift 2 ;;
        --no-numpy) numpy=0; shift ;;
        --callgrind) callgrind=1; shift ;;
        --against) against=$2; shift 2 ;;
        *) echo "usage: tools/bench_engine.sh [--filter TEXT] [--json] [--no-numpy] [--target-cpu CPU] [--callgrind] [--against BINARY]" >&2; exit 2 ;;
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
    swift build -c release --static-swift-stdlib --scratch-path .build-static --product aiot-bench >&2
    bench=.build-static/release/aiot-bench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
kernels=$("$bench" --list-kernels)
auto=$(printf "%s\n" "$kernels" | tail -n 1)   # supported variants are listed slowest first
# One after the other, never concurrently: each gets the same (shared) machine.
for k in $kernels; do
    "$bench" --json --kernel "$k" "${filter[@]}" >"$out/swift-$k.json"
done
# Exit status 2 = no ONNX export among the selected models (e.g. --filter random): Swift and numpy only.
rc=0
"$PYTHON" -m tools.train.bench_onnx --json "${filter[@]}" >"$out/onnx.json" 2>"$out/onnx.err" || rc=$?
if [ "$rc" = 2 ]; then
    echo '{"models": []}' >"$out/onnx.json"
elif [ "$rc" != 0 ]; then
    cat "$out/onnx.err" >&2
    exit 1
fi
if [ "$numpy" = 1 ]; then
    "$PYTHON" tools/bench_numpy.py --json "${filter[@]}" >"$out/numpy.json"
else
    echo '{"models": [], "numpy": null}' >"$out/numpy.json"
fi

JSON=$json CPU="${cpu:-package flags (x86-64 baseline + run-time kernel choice)}" KERNELS="$kernels" AUTO="$auto" OUT="$out" \
    "$PYTHON" - "$out/onnx.json" "$out/numpy.json" <<'PY'
import json, os, platform, sys
kernels = os.environ["KERNELS"].split()
auto = os.environ["AUTO"]
swift = {k: {m["name"]: m for m in json.load(open(os.path.join(os.environ["OUT"], f"swift-{k}.json")))["models"]} for k in kernels}
onnx = json.load(open(sys.argv[1]))
numpy_doc = json.load(open(sys.argv[2]))
numpy = {m["name"]: m for m in numpy_doc["models"]}
ort = {m["name"]: m for m in onnx["models"]}
rows = []
for name in swift[kernels[0]]:
    n, o = numpy.get(name), ort.get(name)
    r = {"name": name, "kernels": {}}
    for k in kernels:
        s = swift[k][name]
        r["kernels"][k] = {"single_cpu_us": s["single_cpu_us"], "single_us": s["single_us"], "batch_cpu_us": s["batch_cpu_us"],
                           "batch_us": s["batch_us"], "batch_size": s["vectors"],
                           "allocations_per_inference": max(s["allocations_per_inference_single"], s["allocations_per_inference_batch"])}
    a = r["kernels"][auto]
    r["auto"] = auto
    r["allocations_per_inference"] = max(v["allocations_per_inference"] for v in r["kernels"].values())
    if o:
        r.update({"ort_run_cpu_us": o["single_cpu_us"], "ort_single_cpu_us": o["single_bound_cpu_us"],
                  "ort_batch_cpu_us": o["batch_cpu_us"],
                  "auto_over_ort_b1": a["single_cpu_us"] / o["single_bound_cpu_us"],
                  "auto_b64_over_ort_b64": a["batch_cpu_us"] / o["batch_cpu_us"]})
    if n:
        r.update({"numpy_single_cpu_us": n["single_cpu_us"], "numpy_over_auto": n["single_cpu_us"] / a["single_cpu_us"]})
    rows.append(r)
load = os.getloadavg()
if os.environ["JSON"] == "1":
    print(json.dumps({"cpu": platform.processor() or platform.machine(), "swift_build": os.environ["CPU"], "kernels": kernels, "auto": auto,
                      "numpy": numpy_doc.get("numpy"), "onnxruntime": onnx.get("onnxruntime"), "load_average": load, "models": rows}))
    sys.exit(0)
def f(r, k, fmt):
    width = int(fmt.lstrip(">").split(".")[0])
    return format(r[k], fmt) if k in r else "-".rjust(width)
w = max(len(r["name"]) for r in rows)
kcols = "".join(f"  {k + ' b1':>11}  {k + ' b64':>11}" for k in kernels)
print(f"{'':<{w}}  CPU us per window (b1 = one window per call, b64 = per window in one 64-window call); auto = {auto}")
print(f"{'model':<{w}}{kcols}  {'ORT b1':>7}  {'ORT b64':>7}  {'numpy':>7}  {'auto/ORT b1':>11}  {'auto/ORT b64':>12}  {'allocs':>6}")
for r in rows:
    kv = "".join(f"  {r['kernels'][k]['single_cpu_us']:>11.2f}  {r['kernels'][k]['batch_cpu_us']:>11.2f}" for k in kernels)
    print(f"{r['name']:<{w}}{kv}  {f(r, 'ort_single_cpu_us', '>7.2f')}  {f(r, 'ort_batch_cpu_us', '>7.2f')}  {f(r, 'numpy_single_cpu_us', '>7.1f')}"
          f"  {f(r, 'auto_over_ort_b1', '>11.2f')}  {f(r, 'auto_b64_over_ort_b64', '>12.2f')}  {r['allocations_per_inference']:>6.2f}")
print("Swift built with: " + os.environ["CPU"] + "; the package runs 'auto' (" + auto + ") on this CPU.")
print("Process CPU time, median of 7 runs (excludes time descheduled on a shared machine). ORT = ONNX Runtime %s," % onnx.get("onnxruntime", "?"))
print("one thread, sequential; b1 through IOBinding (its cheapest call), b64 = per window inside one 64-window run.")
print("- = no ONNX export (random contract-test models) or --no-numpy. Targets (issue 17): auto b1 <= 4 us and <= 0.25")
print("of ORT b1; auto b64 <= 1.5 us per window and <= 0.4 of ORT b64.")
print("Load average %.1f %.1f %.1f" % load)
PY

# Load-independent and same-machine comparisons (stderr-free, after the table; not in --json).
model=${CALLGRIND_MODEL:-random/w24f1d16h1n1p1-w8a8o16}
[ "$json" = 1 ] && exit 0
if [ -n "$against" ]; then
    [ -x "$against" ] || { echo "bench_engine.sh: --against $against is not an executable" >&2; exit 2; }
    echo
    echo "A/B on $model (CPU us per window, b1 / b64; A = this build, B = $against), alternating:"
    other=$("$against" --list-kernels)
    for k in $kernels; do
        printf "%s\n" "$other" | grep -qx "$k" || continue
        for round in 1 2 3 4; do
            for side in A B; do
                bin=$bench; [ "$side" = B ] && bin=$against
                line=$("$bin" --kernel "$k" --filter "$model" | grep "^$model ")
                printf "  %-9s round %d %s  b1 %6s  b64 %6s  load %s\n" "$k" "$round" "$side" \
                    "$(echo "$line" | awk '{print $4}')" "$(echo "$line" | awk '{print $5}')" "$(cut -d' ' -f1 /proc/loadavg)"
            done
        done
    done
fi
if [ "$callgrind" = 1 ]; then
    command -v valgrind >/dev/null || { echo "bench_engine.sh: --callgrind needs valgrind (apt-get install -y valgrind)" >&2; exit 2; }
    # valgrind cannot read the static Swift runtime's debug information: count a copy without it.
    count() {  # count BINARY KERNEL [--profile-batch]: instructions per window, setup subtracted
        local o1 o2 i1 i2
        o1=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --kernel "$2" --filter "$model" --profile 640 ${3:-} 2>&1 || true)
        o2=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --kernel "$2" --filter "$model" --profile 1920 ${3:-} 2>&1 || true)
        # A refused run (valgrind emulates no AVX-512, so that variant is refused under it) prints
        # no "N inferences" line.
        if ! grep -q " inferences" <<<"$o1" || ! grep -q " inferences" <<<"$o2"; then echo "-"; return; fi
        i1=$(awk '/refs:/ {gsub(",", "", $NF); print $NF}' <<<"$o1")
        i2=$(awk '/refs:/ {gsub(",", "", $NF); print $NF}' <<<"$o2")
        echo $(( (i2 - i1) / 1280 ))
    }
    echo
    echo "Instructions per window (callgrind, $model; 1920 minus 640 windows, so loading is not counted;"
    echo "valgrind emulates no AVX-512, so avx512 shows -; b64 - = that binary has no --profile-batch):"
    for side in A B; do
        bin=$bench; [ "$side" = B ] && { [ -n "$against" ] || continue; bin=$against; }
        objcopy --strip-debug "$bin" "$out/bench-$side"
        list=$("$bin" --list-kernels)
        for k in $list; do
            b1=$(count "$out/bench-$side" "$k")
            if "$bin" --help | grep -q -- --profile-batch; then b64=$(count "$out/bench-$side" "$k" --profile-batch); else b64="-"; fi
            printf "  %s %-9s b1 %8s  b64 %8s\n" "$( [ "$side" = A ] && echo "this build" || echo "$against" )" "$k" "$b1" "$b64"
        done
    done
fi
