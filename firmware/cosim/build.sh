#!/usr/bin/env bash
# Builds the co-simulation executable: build/aiot-rtl-sim (Verilator C++ model of aiot_top).
# Shape parameters as NAME=VALUE arguments, e.g. ./build.sh WINDOW=12 D_MODEL=32; default shape otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rtl="$here/../rtl"
out="${AIOT_COSIM_BUILD:-$here/build}"
mkdir -p "$out"
params=()
for p in "$@"; do params+=("-G$p"); done
mapfile -t files < <(sed "s|^|$rtl/|" "$rtl/files.f")
verilator --cc --exe --build -j 2 -O2 -Wno-fatal --top-module aiot_top "${params[@]}" \
    "${files[@]}" "$here/../sim/ICAPE2.sv" "$here/aiot_rtl_sim.cpp" -Mdir "$out/obj" -o aiot-rtl-sim > "$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log"; exit 1; }
cp "$out/obj/aiot-rtl-sim" "$out/aiot-rtl-sim"
echo "$out/aiot-rtl-sim"
