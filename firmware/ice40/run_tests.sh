#!/usr/bin/env bash
# run_tests.sh: the bit-exact suite of the iCE40UP5K core (firmware/ice40/rtl) on the common test
# bench: lint; the microprogram model (gen_prog.py --check, 4 vectors) on every random v1 model;
# under Verilator (byte bus) every vector of the seven default-shape configurations and 16 vectors
# of each other random v1 shape; W8A8 and W4A8 through the SPI pins (16 vectors); one vector of
# W8A8 and W4A8 under Icarus (ICE40_ICARUS=all: one of each default-shape configuration); a
# corrupted vector file that must fail; two images with a good CRC the loader must refuse (0x04). ICE40_ALL=1: every vector of every v1 model, trained ones
# included, and 8 vectors of each in the program model (long).
# Ends with `N passed, M failed` (one per check). Environment: PYTHON (numpy + tools/).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON
cd "$here"
mapfile -t models < <("$PYTHON" - "$root" "$root"/models/*/*.safetensors <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tools")
from aiot import modelfile
for p in sys.argv[2:]:
    if modelfile.load_model(p).shape.skip:
        print(f"  skipped (contract v2; the iCE40 core implements v1): {p[len(sys.argv[1]) + 1:]}", file=sys.stderr)
    else:
        print(p)
PY
)
pass=0; fail=0
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
check() {   # check NAME OUTPUT_FILE: the bench printed "N passed, 0 failed"
    if grep -Eq '^[0-9]+ passed, 0 failed$' "$2"; then
        printf '  %-62s %s\n' "$1" "$(grep -E '^[0-9]+ passed' "$2" | tail -1)"; pass=$((pass + 1))
    else
        printf '  %-62s FAILED\n' "$1"; sed 's/^/    /' "$2" | tail -15; fail=$((fail + 1))
    fi
}
echo "== lint: verilator --lint-only (iCE40 core, default shape and a two-layer two-head shape)"
for g in "" "-GWINDOW=12 -GFEATURES=2 -GD_MODEL=8 -GHEADS=2 -GLAYERS=2 -GHORIZON=3"; do
    if verilator --lint-only -Wall -Wno-UNUSEDPARAM -Wno-UNUSEDSIGNAL -f rtl/files.f -y rtl --top-module aiot_top \
        -GREBOOT_ICAP=0 $g "+define+AIOT_PROG=\"x.hex\"" > "$log" 2>&1; then pass=$((pass + 1)); echo "  clean $g"
    else fail=$((fail + 1)); echo "  lint FAILED $g"; head -20 "$log"; fi
done
all="${ICE40_ALL:-0}"
pm=(); for m in "${models[@]}"; do [ "$all" = 1 ] || [ "$(basename "$(dirname "$m")")" = random ] && pm+=("$m"); done
echo "== microprogram model (gen_prog.py --check): $([ "$all" = 1 ] && echo 8 || echo 4) vectors of every $([ "$all" = 1 ] || echo "random ")v1 model"
for m in "${pm[@]}"; do
    "$PYTHON" gen_prog.py --check "$m" "$([ "$all" = 1 ] && echo 8 || echo 4)" > "$log" 2>&1
    check "$(basename "$(dirname "$m")")/$(basename "$m" .safetensors) (program model)" "$log"
done
echo "== verilator, byte bus: every vector of $([ "$all" = 1 ] && echo "every v1 model" || echo "the default-shape configurations, 16 of the other random shapes")"
for m in "${pm[@]}"; do
    max=1000000
    case "$all/$(basename "$m")" in 1/*|*/w24f1d16h1n1p1-*) ;; *) max=16;; esac
    ./run_one.sh verilator 0 "$m" "$max" > "$log" 2>&1
    check "$(basename "$(dirname "$m")")/$(basename "$m" .safetensors)" "$log"
    grep -m1 '^cycles per inference' "$log" | sed 's/^/    /'
done
echo "== verilator, SPI pins (host protocol): W8A8 and W4A8, 16 vectors"
for m in "$root"/models/random/w24f1d16h1n1p1-w8a8.safetensors "$root"/models/random/w24f1d16h1n1p1-w4a8.safetensors; do
    ./run_one.sh verilator 1 "$m" 16 > "$log" 2>&1
    check "$(basename "$m" .safetensors) (SPI)" "$log"
done
echo "== icarus, byte bus: one vector"
ice40_icarus=("$root"/models/random/w24f1d16h1n1p1-w8a8.safetensors "$root"/models/random/w24f1d16h1n1p1-w4a8.safetensors)
[ "${ICE40_ICARUS:-}" = all ] && ice40_icarus=("$root"/models/random/w24f1d16h1n1p1-*.safetensors)
for m in "${ice40_icarus[@]}"; do
    ./run_one.sh icarus 0 "$m" 1 > "$log" 2>&1
    check "$(basename "$m" .safetensors) (Icarus, 1 vector)" "$log"
done
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
    echo "  corrupted vector accepted: FAILED"; fail=$((fail + 1))
elif grep -q '^7 passed, 1 failed$' "$log"; then
    echo "  corrupted vector rejected (7 passed, 1 failed, exit non-zero)"; pass=$((pass + 1))
else
    echo "  corrupted vector run ended unexpectedly: FAILED"; tail -5 "$log"; fail=$((fail + 1))
fi
rm -f "$bad"
echo "== images the loader must refuse (VERIFY_PARAMS error 0x04, CRC intact): wrong window, wrong tensor count"
m="$root/models/random/w24f1d16h1n1p1-w8a8.safetensors"
./run_one.sh verilator 0 "$m" 1 > /dev/null 2>&1   # builds the default-shape bench and the image
exe="$(ls -d "${AIOT_BUILD:-$here/build}"/vl-w24f1d16h1n1p1-pb*/vtb | head -1)"
for case in window count; do
    bad="$(mktemp -d)"
    "$PYTHON" - "$root" "$m" "$bad/img" "$case" <<'PY'
import struct, sys, zlib
sys.path.insert(0, sys.argv[1] + "/tools")
from aiot.modelfile import load_model
from aiot.paramimage import serialize
img = bytearray(serialize(load_model(sys.argv[2])))
if sys.argv[4] == "window":
    struct.pack_into("<H", img, 16, 23)                        # header: window 23, not 24
else:
    d = struct.unpack_from("<I", img, 56)[0]
    struct.pack_into("<I", img, d + 8 * 3 + 4, 255)            # directory: q.weight count 255, not 256
s = load_model(sys.argv[2]).shape
open(sys.argv[3] + ".hex", "w").write("\n".join(f"{b:02x}" for b in img) + "\n")
open(sys.argv[3] + ".meta", "w").write(f"{len(img)} {zlib.crc32(img)} {s.window} {s.features} {s.d_model} {s.heads} {s.layers} {s.horizon}\n")
PY
    ("$exe" +image="$bad/img.hex" +meta="$bad/img.meta" +vectors="${m%.safetensors}.vectors.txt" +max=1 > "$log" 2>&1) 2> /dev/null   # the bench stops ($fatal)
    if grep -q 'PARAMS_VALID not set after VERIFY_PARAMS (STATUS 0000040' "$log"; then
        echo "  $case: refused with error 0x04"; pass=$((pass + 1))
    else
        echo "  $case: not refused as expected: FAILED"; tail -3 "$log"; fail=$((fail + 1))
    fi
    rm -rf "$bad"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
