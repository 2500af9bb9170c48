#!/usr/bin/env bash
# Firmware tests: lint, every committed vector of every model, contract v1 and v2 (the skip path),
# under Verilator (byte bus), the default-shape
# configurations through the SPI pins, every model under Icarus (a subset of vectors each), the
# iCE40UP5K core's own suite (ice40/run_tests.sh), a corrupted vector
# file that must fail, the co-simulation executable driven with MPSSE buffers,
# and the XC7S15 fit check (yosys, pre-place-and-route; fails above 85 % of the LUTs).
# Environment: PYTHON (numpy + the repo's tools/; default .venv/bin/python or python3),
#              ICARUS_VECTORS (vectors per file under Icarus for models other than the five named
#              default-shape configurations; default 2), ICARUS_NAMED_VECTORS (vectors of the named
#              W6A6/W4A4/W4A8/W6A8 under Icarus, W8A8 always runs every vector; default 16, "all" for
#              every vector: about 4 s each here), ICE40_ICARUS=all / ICE40_ALL=1 (ice40/run_tests.sh),
#              AIOT_SKIP_SYNTH=1, FIRMWARE_JOBS (Icarus runs at a time; default the core count).
# Verilator runs every vector of every model in every configuration either way; the Icarus limits keep
# CI within its time (every vector of the five under Icarus is about 19 min on these 2 cores).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON
cd "$here"
# random test models (contract v1 in random/, v2 with the skip path in random-v2/) and trained ones
models=("$root"/models/*/*.safetensors)
random_models=("$root"/models/random/*.safetensors "$root"/models/random-v2/*.safetensors)
fail=0
check() {   # check NAME OUTPUT_FILE: the test bench ran and printed "N passed, 0 failed"
    if grep -Eq '^[0-9]+ passed, 0 failed$' "$2"; then
        printf '  %-58s %s\n' "$1" "$(grep -E '^[0-9]+ passed' "$2")"
    else
        printf '  %-58s FAILED\n' "$1"; sed 's/^/    /' "$2" | tail -15; fail=1
    fi
}
log="$(mktemp)"; trap 'rm -f "$log"' EXIT

echo "== lint: verilator --lint-only -Wall (default configuration)"
verilator --lint-only -Wall -f rtl/files.f sim/ICAPE2.sv -y rtl --top-module aiot_top
verilator --lint-only -Wall -f rtl/files.f sim/ICAPE2.sv -y rtl --top-module aiot_top \
    -GWINDOW=12 -GFEATURES=2 -GD_MODEL=8 -GHEADS=2 -GLAYERS=2 -GHORIZON=3
verilator --lint-only -Wall -f rtl/files.f -y rtl --top-module aiot_top -GREBOOT_ICAP=0 -GLANES=4
echo "  clean"

# The iCE40 core's suite and the XC7S15 fit check are single-threaded and independent of the runs
# below (their own builds and outputs), so they go in the background beside the Verilator runs,
# which are sequential; their results are printed in order further down. The Icarus section counts
# this job as one of its $FIRMWARE_JOBS, so the cores are not oversubscribed.
side="$(mktemp -d)"; trap 'rm -f "$log"; rm -rf "$side"' EXIT
(
    ./ice40/run_tests.sh > "$side/ice40.log" 2>&1 || true
    if [ "${AIOT_SKIP_SYNTH:-0}" != 1 ]; then
        rc=0; ./synth/fit_check.py --margin > "$side/fit.log" 2>&1 || rc=$?; echo "$rc" > "$side/fit.rc"
    fi
) &

echo "== verilator, byte bus: every vector of every model"
for m in "${models[@]}"; do
    ./run_one.sh verilator 0 "$m" > "$log" 2>&1 || true
    check "$(basename "$(dirname "$m")")/$(basename "$m" .safetensors)" "$log"
done

echo "== verilator, SPI pins (host protocol): default-shape configurations (v1 and v2)"
for m in "$root"/models/random/w24f1d16h1n1p1-*.safetensors "$root"/models/random-v2/w24f1d16h1n1p1-*.safetensors; do
    ./run_one.sh verilator 1 "$m" 16 > "$log" 2>&1 || true
    check "$(basename "$m" .safetensors) (SPI, 16 vectors)" "$log"
done

echo "== icarus, byte bus (one run per core): every vector of W8A8 at the default shape, ${ICARUS_NAMED_VECTORS:-8} of W6A6/W4A4/W4A8/W6A8; a subset of every other random model (v1 and v2: random-v2 covers the skip path's shapes) and of one trained model per data set"
icarus_models=("${random_models[@]}")
for d in "$root"/models/*/; do
    [ "$(basename "$d")" = random ] && continue
    [ "$(basename "$d")" = random-v2 ] && continue
    for m in "${models[@]}"; do   # its first model
        [ "$(dirname "$m")/" = "$d" ] && { icarus_models+=("$m"); break; }
    done
done
# Icarus simulations are single-threaded and were about half of this script's time, so they run one
# per core, and W8A8's every-vector run is split in two halves; the results are checked in order.
par="${FIRMWARE_JOBS:-$(nproc)}"
jobdir="$(mktemp -d)"; labels=()
submit() {   # submit LABEL RUN_ONE_ARGS...: start it once fewer than $par runs are going
    local label=$1; shift
    while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n || true; done
    ( ./run_one.sh "$@" > "$jobdir/${#labels[@]}.log" 2>&1 ) &
    labels+=("$label")
}
for m in "${icarus_models[@]}"; do
    max="${ICARUS_VECTORS:-2}"
    label="$(basename "$(dirname "$m")")/$(basename "$m" .safetensors)"
    case "$(basename "$m" .safetensors)" in   # W8A8 W6A6 W4A4 W4A8 W6A8: every vector (issue 7)
        w24f1d16h1n1p1-w8a8) max=1000000;;
        w24f1d16h1n1p1-w6a6|w24f1d16h1n1p1-w4a4|w24f1d16h1n1p1-w4a8|w24f1d16h1n1p1-w6a8)
            max="${ICARUS_NAMED_VECTORS:-8}"; [ "$max" = all ] && max=1000000;;
    esac
    if [ "$max" = 1000000 ] && [ "$par" -gt 1 ]; then
        # Every vector, in two halves (one vector per line after the header "aiotvec1 COUNT IN OUT").
        vec="${m%.safetensors}.vectors.txt"
        "$PYTHON" - "$vec" "$jobdir/$(basename "$m" .safetensors)" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
magic, count, n_in, n_out = lines[0].split()
body = lines[1:]
assert len(body) == int(count), f"{sys.argv[1]}: {len(body)} lines for {count} vectors"
half = (len(body) + 1) // 2
for tag, part in (("a", body[:half]), ("b", body[half:])):
    open(f"{sys.argv[2]}.{tag}.vectors.txt", "w").write("\n".join([f"{magic} {len(part)} {n_in} {n_out}"] + part) + "\n")
PY
        for h in a b; do submit "$label (half $h)" icarus 0 "$m" "$max" "$jobdir/$(basename "$m" .safetensors).$h.vectors.txt"; done
    else
        submit "$label" icarus 0 "$m" "$max"
    fi
done
m="$root/models/random/w24f1d16h1n1p1-w8a8.safetensors"
submit "$(basename "$m" .safetensors) (Icarus, SPI, 1 vector)" icarus 1 "$m" 1
wait
for i in "${!labels[@]}"; do check "${labels[$i]}" "$jobdir/$i.log"; done
rm -rf "$jobdir"

echo "== iCE40UP5K core (firmware/ice40/rtl, its own suite: ice40/run_tests.sh; ran beside the above)"
wait   # the side job (normally done long before)
cp "$side/ice40.log" "$log"
sed -n '/^==/p;/FAILED/p' "$log" | sed 's/^/  /'
if grep -Eq '^[0-9]+ passed, 0 failed$' "$log"; then echo "  iCE40 core: $(tail -1 "$log")"
else echo "  iCE40 core: FAILED"; grep -B2 -A12 FAILED "$log" | head -40; fail=1; fi

echo "== a corrupted vector file must fail"
bad="$(mktemp --suffix=.vectors.txt)"
"$PYTHON" - "$root/models/random/w24f1d16h1n1p1-w8a8.vectors.txt" "$bad" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
f = lines[3].split()
f[-1] = str(int(f[-1]) + 1)        # third vector: expected output off by one
lines[3] = " ".join(f)
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
if ./run_one.sh verilator 0 "$root/models/random/w24f1d16h1n1p1-w8a8.safetensors" 8 "$bad" > "$log" 2>&1; then
    echo "  corrupted vector accepted: FAILED"; fail=1
elif grep -q '^7 passed, 1 failed$' "$log"; then
    echo "  corrupted vector rejected (7 passed, 1 failed, exit non-zero)"
else
    echo "  corrupted vector run ended unexpectedly: FAILED"; tail -5 "$log"; fail=1
fi
rm -f "$bad"

echo "== co-simulation: aiot-rtl-sim driven with MPSSE buffers as the host does"
AIOT_COSIM_BUILD="$here/build/cosim" ./cosim/build.sh > /dev/null
"$PYTHON" cosim/test_cosim.py "$here/build/cosim/aiot-rtl-sim" "$root/models/random/w24f1d16h1n1p1-w4a8.safetensors" 16 > "$log" 2>&1 || true
check "w24f1d16h1n1p1-w4a8 (co-simulation, 16 vectors)" "$log"
"$PYTHON" cosim/test_cosim.py "$here/build/cosim/aiot-rtl-sim" "$root/models/random-v2/w24f1d16h1n1p1-w8a8-skip.safetensors" 16 > "$log" 2>&1 || true
check "w24f1d16h1n1p1-w8a8-skip (co-simulation, contract v2, 16 vectors)" "$log"
# The iCE40UP5K core as a co-simulation process too (tools/test.sh runs aiotctl against it).
AIOT_COSIM_CORE=ice40 AIOT_COSIM_BUILD="$here/build/cosim-ice40" PYTHON="$PYTHON" ./cosim/build.sh > /dev/null
"$PYTHON" cosim/test_cosim.py "$here/build/cosim-ice40/aiot-rtl-sim" "$root/models/random/w24f1d16h1n1p1-w4a8.safetensors" 16 > "$log" 2>&1 || true
check "w24f1d16h1n1p1-w4a8 (co-simulation of the iCE40 core, 16 vectors)" "$log"

if [ "${AIOT_SKIP_SYNTH:-0}" != 1 ]; then
    echo "== XC7S15 fit (yosys synth_xilinx, pre-place-and-route estimate; fails above 85 % LUTs, issue 15)"
    cat "$side/fit.log"
    [ "$(cat "$side/fit.rc" 2>/dev/null)" = 0 ] || { echo "  XC7S15 fit check FAILED"; fail=1; }
fi
rm -rf "$side"

if [ "$fail" != 0 ]; then echo "firmware tests FAILED"; exit 1; fi
echo "firmware tests passed"
