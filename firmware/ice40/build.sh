#!/usr/bin/env bash
# build.sh: the accelerator for the iCE40UP5K (iCEBreaker-class board, icebreaker.pcf) through the
# open flow: yosys synth_ice40 -dsp -> nextpnr-ice40 --up5k --package sg48 (placement, routing,
# static timing at FREQ MHz) -> icepack. Writes build/aiot_ice40.bin and build/report.txt
# (LUT4/FF/SB_MAC16/EBR/SPRAM use and nextpnr's "Max frequency"). Exits non-zero when the design
# does not fit, place, route or meet FREQ.
# Environment: LANES (default 1: 4 SB_MAC16 a lane, 3 more in the engine; 8 on the part), POST_LANES (1), PARAM_BYTES (8192), FREQ (16, MHz),
#              SEED (1: nextpnr placement seed, fixed for reproducible results), OUT (build dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rtl="$here/../rtl"
out="${OUT:-$here/build}"
lanes="${LANES:-1}"; post="${POST_LANES:-1}"; pb="${PARAM_BYTES:-8192}"
freq="${FREQ:-16}"; seed="${SEED:-1}"
for t in yosys nextpnr-ice40 icepack; do
    command -v "$t" > /dev/null || { echo "build.sh: $t not found; install yosys nextpnr-ice40 fpga-icestorm (tools/setup.sh)" >&2; exit 2; }
done
mkdir -p "$out"
mapfile -t files < <(sed "s|^|$rtl/|" "$rtl/files.f" | grep -v '/aiot_icap.sv$')   # no ICAPE2 on the iCE40
files+=("$here/aiot_ice40_top.sv")
start=$(date +%s)

cat > "$out/synth.ys" <<YS
read_verilog -sv ${files[*]}
hierarchy -top aiot_ice40_top -chparam LANES $lanes -chparam POST_LANES $post -chparam PARAM_BYTES $pb
# the iCE40 has no LUT RAM: let yosys map every memory (EBR for synchronous reads, else logic)
setattr -unset ram_style m:*
synth_ice40 -dsp -top aiot_ice40_top -json $out/aiot_ice40.json
tee -o $out/stat.txt stat
YS
echo "== yosys synth_ice40 -dsp (LANES=$lanes POST_LANES=$post PARAM_BYTES=$pb)"
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
    --label "LANES=$lanes POST_LANES=$post PARAM_BYTES=$pb seed $seed" \
    --seconds "$t_synth" "$t_pnr" > "$out/report.txt" || rc=$?
cat "$out/report.txt"
exit "${rc:-0}"
