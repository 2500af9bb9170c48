#!/usr/bin/env bash
# build.sh: the iCE40UP5K core (firmware/ice40/rtl: microcoded engine, one multiplier, PARAM and
# activations in SPRAM) for an iCEBreaker-class board (icebreaker.pcf) through the open flow:
# gen_prog.py (the microprogram of the default shape) -> yosys synth_ice40 -dsp -> nextpnr-ice40
# --up5k --package sg48 (placement, routing, static timing at FREQ MHz) -> icepack. Writes
# build/aiot_ice40.bin and build/report.txt (LUT4/FF/SB_MAC16/EBR/SPRAM use and nextpnr's
# "Max frequency"). Exits non-zero when the design does not fit, place, route or meet FREQ.
# Environment: PARAM_BYTES (32768: one SPRAM), FREQ (16, MHz), SEED (1: nextpnr placement seed,
#              fixed for reproducible results), OUT (build dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rtl="$here/rtl"
out="${OUT:-$here/build}"
pb="${PARAM_BYTES:-32768}"
freq="${FREQ:-16}"; seed="${SEED:-1}"
for t in yosys nextpnr-ice40 icepack; do
    command -v "$t" > /dev/null || { echo "build.sh: $t not found; install yosys nextpnr-ice40 fpga-icestorm (tools/setup.sh)" >&2; exit 2; }
done
mkdir -p "$out"
mapfile -t files < <(sed "s|^|$rtl/|" "$rtl/files.f")
files+=("$here/aiot_ice40_top.sv")
python3 "$here/gen_prog.py" 24 1 16 1 1 1 "$out/prog.hex" > /dev/null   # the default shape (aiot_top's)
start=$(date +%s)

cat > "$out/synth.ys" <<YS
read_verilog -sv -DAIOT_PROG="$out/prog.hex" ${files[*]}
hierarchy -top aiot_ice40_top -chparam PARAM_BYTES $pb
# the iCE40 has no LUT RAM: let yosys map every memory (EBR for synchronous reads, else logic)
setattr -unset ram_style m:*
synth_ice40 -dsp -top aiot_ice40_top -json $out/aiot_ice40.json
tee -o $out/stat.txt stat
YS
echo "== yosys synth_ice40 -dsp (iCE40 core, PARAM_BYTES=$pb)"
if ! yosys -q -l "$out/yosys.log" -s "$out/synth.ys" > /dev/null 2>&1; then
    grep -E '^ERROR' "$out/yosys.log" | head -5 >&2; echo "build.sh: yosys failed, see $out/yosys.log" >&2; exit 1
fi
t_synth=$(( $(date +%s) - start ))

echo "== nextpnr-ice40 --up5k --package sg48 --freq $freq --seed $seed"
pnr_rc=0
nextpnr-ice40 --up5k --package sg48 --pcf "$here/icebreaker.pcf" --json "$out/aiot_ice40.json" \
    --asc "$out/aiot_ice40.asc" --freq "$freq" --seed "$seed" > "$out/nextpnr.log" 2>&1 || pnr_rc=$?
t_pnr=$(( $(date +%s) - start - t_synth ))

pack_rc=1
if [ "$pnr_rc" = 0 ] && [ -s "$out/aiot_ice40.asc" ]; then
    echo "== icepack"
    icepack "$out/aiot_ice40.asc" "$out/aiot_ice40.bin" && pack_rc=0
fi

python3 "$here/report.py" --stat "$out/stat.txt" --pnr "$out/nextpnr.log" --freq "$freq" \
    --bin "$out/aiot_ice40.bin" --pnr-rc "$pnr_rc" --pack-rc "$pack_rc" \
    --label "iCE40 core, default shape, PARAM_BYTES=$pb seed $seed" \
    --seconds "$t_synth" "$t_pnr" > "$out/report.txt" || rc=$?
cat "$out/report.txt"
exit "${rc:-0}"
