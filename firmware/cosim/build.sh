#!/usr/bin/env bash
# Builds the co-simulation executable: build/aiot-rtl-sim (Verilator C++ model of aiot_top).
# aiot_top parameters as NAME=VALUE arguments, e.g. ./build.sh WINDOW=12 D_MODEL=32; default shape otherwise.
# CLK_NS=N sets the modelled clock period (default 10 ns). The iCE40UP5K configuration:
#   AIOT_COSIM_BUILD=build/cosim-ice40 ./build.sh LANES=1 REBOOT_ICAP=0 CLOCK_HZ=15937500 CLK_NS=63
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rtl="$here/../rtl"
out="${AIOT_COSIM_BUILD:-$here/build}"
mkdir -p "$out"
params=()
for p in "$@"; do
    case "$p" in
        CLK_NS=*) params+=(-CFLAGS "-DAIOT_CLK_NS=${p#CLK_NS=}");;   # the model's clock period
        *) params+=("-G$p");;
    esac
done
mapfile -t files < <(sed "s|^|$rtl/|" "$rtl/files.f")
verilator --cc --exe --build -j 2 -O2 -Wno-fatal --top-module aiot_top "${params[@]}" \
    "${files[@]}" "$here/../sim/ICAPE2.sv" "$here/aiot_rtl_sim.cpp" -Mdir "$out/obj" -o aiot-rtl-sim > "$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log"; exit 1; }
cp "$out/obj/aiot-rtl-sim" "$out/aiot-rtl-sim"
echo "$out/aiot-rtl-sim"
