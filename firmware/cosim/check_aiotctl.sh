#!/usr/bin/env bash
# `aiotctl infer --device sim-rtl:...` (the FPGA engine, its weights upload and one-buffer
# inference executed by the accelerator RTL in aiot-rtl-sim) must print the same forecasts as
# `aiotctl infer` with the software engine, for every default-shape random model (contract v1 and
# v2, the skip path), with every inference answered by the RTL (no fallback to software).
# usage: check_aiotctl.sh [AIOTCTL] [AIOT_RTL_SIM]
#   COSIM_CONTRACT=v1: the contract v1 models only (the iCE40 core, VERSION 1.0, refuses v2)
#   defaults: .build/debug/aiotctl and firmware/build/cosim/aiot-rtl-sim (run_tests.sh builds it).
# Prints "N passed, M failed" (one per model) and exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
aiotctl="${1:-$root/.build/debug/aiotctl}"
sim="${2:-$root/firmware/build/cosim/aiot-rtl-sim}"
[ -x "$aiotctl" ] || { echo "no aiotctl at $aiotctl; run swift build first"; exit 1; }
[ -x "$sim" ] || { echo "no co-simulation executable at $sim; build it with firmware/cosim/build.sh"; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

# 16 windows of 24 readings: sines of growing amplitude and offset, the last ones far outside the
# models' input range so input saturation crosses the link too.
awk 'BEGIN { for (l = 0; l < 16; l++) { s = ""; for (t = 0; t < 24; t++) {
        v = sin((t + 3 * l) / 4.0) * (1 + l * l / 8.0) + 0.1 * l; s = s (t ? "," : "") sprintf("%.4f", v) }
    print s } }' > "$tmp/in.csv"
lines=16

passed=0; failed=0
models=("$root"/models/random/w24f1d16h1n1p1-*.safetensors)
[ "${COSIM_CONTRACT:-}" = v1 ] || models+=("$root"/models/random-v2/w24f1d16h1n1p1-*.safetensors)
for m in "${models[@]}"; do
    name="$(basename "$m" .safetensors)"
    "$aiotctl" infer --json --model "$m" --input "$tmp/in.csv" > "$tmp/sw.json"
    if ! "$aiotctl" infer --json --device "sim-rtl:$sim" --model "$m" --input "$tmp/in.csv" > "$tmp/rtl.json" 2> "$tmp/rtl.err"; then
        echo "  $name: aiotctl infer --device sim-rtl failed:"; sed 's/^/    /' "$tmp/rtl.err"; failed=$((failed + 1)); continue
    fi
    if python3 - "$tmp/sw.json" "$tmp/rtl.json" "$lines" "$name" <<'PY'
import json, sys
sw, rtl = (json.load(open(p)) for p in sys.argv[1:3])
n, name = int(sys.argv[3]), sys.argv[4]
problems = []
if len(sw["forecasts"]) != n or sw["errors"]:
    problems.append(f"software engine answered {len(sw['forecasts'])} of {n} lines, errors {sw['errors']}")
if rtl.get("engine") != "fpga" or rtl.get("fpga_inferences") != n or rtl.get("fallback_inferences") != 0:
    problems.append(f"not every inference ran on the RTL: engine {rtl.get('engine')}, fpga {rtl.get('fpga_inferences')}, "
                    f"fallback {rtl.get('fallback_inferences')}, health {rtl.get('health')}")
for a, b in zip(sw["forecasts"], rtl["forecasts"]):
    if a != b:
        problems.append(f"line {a['line']}: software {a['quantized']} {a['forecast']}, RTL {b['quantized']} {b['forecast']}")
if len(sw["forecasts"]) != len(rtl["forecasts"]):
    problems.append(f"{len(sw['forecasts'])} software forecasts, {len(rtl['forecasts'])} from the RTL")
for p in problems[:10]:
    print(f"  {name}: {p}")
if not problems:
    print(f"  {name}: {n} forecasts identical, all from the RTL ({rtl['usb_round_trips']} round trips)")
sys.exit(1 if problems else 0)
PY
    then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

# The comparison must be able to fail: a different model's software forecasts differ from the RTL's.
other="$root/models/random/w24f1d16h1n1p1-w4a4.safetensors"
"$aiotctl" infer --json --model "$other" --input "$tmp/in.csv" > "$tmp/other.json"
if python3 -c 'import json,sys; a,b=(json.load(open(p))["forecasts"] for p in sys.argv[1:]); sys.exit(0 if a!=b else 1)' \
        "$tmp/other.json" "$tmp/rtl.json"; then
    echo "  control: another model's forecasts differ from the last RTL run (the check can fail)"
else
    echo "  control: another model's forecasts equal the RTL's; the comparison cannot tell models apart"; failed=$((failed + 1))
fi

echo "cosim: $passed passed, $failed failed   (aiotctl infer --device sim-rtl vs the software engine)"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
