#!/usr/bin/env bash
# run_one.sh SIM SPI MODEL [MAX] [VECTORS]: build (cached per shape) and run the test bench on one
# model's vectors. SIM = verilator | icarus, SPI = 0 (byte bus) | 1 (SPI pins). VECTORS defaults to
# MODEL's NAME.vectors.txt. Prints the test bench output; exits non-zero on any mismatch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
sim="$1"; spi="$2"; model="$3"; max="${4:-1000000}"
name="$(basename "$model" .safetensors)"
vec="${5:-${model%.safetensors}.vectors.txt}"
build="${AIOT_BUILD:-$here/build}"
mkdir -p "$build"
py="${PYTHON:-python3}"
read -r W F D H N P <<< "$(echo "$name" | sed -E 's/^w([0-9]+)f([0-9]+)d([0-9]+)h([0-9]+)n([0-9]+)p([0-9]+).*/\1 \2 \3 \4 \5 \6/')"
if ! [[ "$W" =~ ^[0-9]+$ ]]; then
    # models without the shape in their name: read it from the model file
    read -r W F D H N P <<< "$("$py" -c "import sys; sys.path.insert(0,'$root/tools'); from aiot.modelfile import load_model; s=load_model('$model').shape; print(s.window,s.features,s.d_model,s.heads,s.layers,s.horizon)")"
fi
# The image is this process's own (several runs of one model may go in parallel, run_tests.sh).
img="$build/img-$name-$$"
trap 'rm -f "$img.hex" "$img.meta"' EXIT
"$py" "$root/tools/rtl_image.py" "$model" "$img"
len=$(cut -d' ' -f1 "$img.meta")
pb=1024; while [ "$pb" -lt "$len" ]; do pb=$((pb * 2)); done
lanes="${LANES:-16}"
post="${POST_LANES:-1}"
icap="${REBOOT_ICAP:-1}"
tag="w${W}f${F}d${D}h${H}n${N}p${P}-l${lanes}-e${post}-pb${pb}-i${icap}"
params=(WINDOW=$W FEATURES=$F D_MODEL=$D HEADS=$H LAYERS=$N HORIZON=$P LANES=$lanes POST_LANES=$post PARAM_BYTES=$pb REBOOT_ICAP=$icap)
src=("$here/sim/tb_aiot.sv" "$here/sim/ICAPE2.sv")
mapfile -t rtl < <(sed "s|^|$here/rtl/|" "$here/rtl/files.f")
args=(+image="$img.hex" +meta="$img.meta" +vectors="$vec" +max="$max")
if [ "$spi" = 1 ]; then args+=(+spi); fi
# One build per shape at a time: parallel runs of the same shape wait for the first one's build.
exec 9> "$build/$sim-$tag.lock"
flock 9
if [ "$sim" = verilator ]; then
    exe="$build/vl-$tag/vtb"
    if [ ! -x "$exe" ] || [ -n "$(find "$here/rtl" "$here/sim" -newer "$exe" -name '*.sv' | head -1)" ]; then
        verilator --binary -j 2 --timing -Wno-fatal -Wno-lint -Wno-style -O2 --top-module tb_aiot \
            $(printf -- '-G%s ' "${params[@]}") "${rtl[@]}" "${src[@]}" -Mdir "$build/vl-$tag" -o vtb > "$build/vl-$tag.log" 2>&1 || { cat "$build/vl-$tag.log"; exit 1; }
    fi
    flock -u 9
    "$exe" "${args[@]}"
else
    exe="$build/iv-$tag.vvp"
    if [ ! -f "$exe" ] || [ -n "$(find "$here/rtl" "$here/sim" -newer "$exe" -name '*.sv' | head -1)" ]; then
        iverilog -g2012 -o "$exe" -s tb_aiot $(printf -- '-Ptb_aiot.%s ' "${params[@]}") "${rtl[@]}" "${src[@]}" 2> "$exe.log" || { cat "$exe.log"; exit 1; }
    fi
    flock -u 9
    vvp -n "$exe" "${args[@]}"
fi
