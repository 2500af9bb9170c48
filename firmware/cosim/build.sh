#!/usr/bin/env bash
# Builds the co-simulation executable: build/aiot-rtl-sim (Verilator C++ model of aiot_top).
# aiot_top parameters as NAME=VALUE arguments, e.g. ./build.sh WINDOW=12 D_MODEL=32; default shape otherwise.
# CLK_NS=N sets the modelled clock period (default 10 ns). The XC7S15 RTL's one-lane configuration:
#   AIOT_COSIM_BUILD=build/cosim-lanes1 ./build.sh LANES=1 REBOOT_ICAP=0 CLOCK_HZ=15937500 CLK_NS=63
# AIOT_COSIM_CORE=ice40 builds the iCE40UP5K core instead (firmware/ice40/rtl, its microprogram from
# gen_prog.py for the shape given, default shape otherwise; 15.94 MHz, one multiplier):
#   AIOT_COSIM_CORE=ice40 AIOT_COSIM_BUILD=build/cosim-ice40 ./build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${AIOT_COSIM_BUILD:-$here/build}"
mkdir -p "$out"
params=()
shape=(24 1 16 1 1 1)   # W F d H N P, for the iCE40 core's microprogram
for p in "$@"; do
    case "$p" in
        CLK_NS=*) params+=(-CFLAGS "-DAIOT_CLK_NS=${p#CLK_NS=}");;   # the model's clock period
        *) params+=("-G$p")
           case "$p" in WINDOW=*) shape[0]=${p#*=};; FEATURES=*) shape[1]=${p#*=};; D_MODEL=*) shape[2]=${p#*=};;
                        HEADS=*) shape[3]=${p#*=};; LAYERS=*) shape[4]=${p#*=};; HORIZON=*) shape[5]=${p#*=};; esac;;
    esac
done
if [ "${AIOT_COSIM_CORE:-xc7s15}" = ice40 ]; then
    rtl="$here/../ice40/rtl"
    "${PYTHON:-python3}" "$here/../ice40/gen_prog.py" "${shape[@]}" "$out/prog.hex" > /dev/null
    params=(-GLANES=1 -GPOST_LANES=1 -GREBOOT_ICAP=0 -GCLOCK_HZ=15937500 -GPARAM_BYTES=32768 -CFLAGS -DAIOT_CLK_NS=63
            "+define+AIOT_PROG=\"$out/prog.hex\"" "${params[@]}")
    extra=("$here/../rtl/aiot_icap.sv")
else
    rtl="$here/../rtl"
    extra=()
fi
mapfile -t files < <(sed "s|^|$rtl/|" "$rtl/files.f")
verilator --cc --exe --build -j 2 -O2 -Wno-fatal --top-module aiot_top "${params[@]}" \
    "${files[@]}" "${extra[@]}" "$here/../sim/ICAPE2.sv" "$here/aiot_rtl_sim.cpp" -Mdir "$out/obj" -o aiot-rtl-sim > "$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log"; exit 1; }
cp "$out/obj/aiot-rtl-sim" "$out/aiot-rtl-sim"
echo "$out/aiot-rtl-sim"
