#!/usr/bin/env bash
# The packaged aiotctl (tools/package.sh's static release build) on emulated older CPUs: under
# qemu-user with -cpu Nehalem (no AVX2) it must select the portable kernel, with -cpu Haswell
# (AVX2, no AVX-512) the avx2 one, and every variant it offers must pass the committed vectors.
# Proves the run-time choice on CPUs this host is not (its own variants run natively in the
# swift-test and vectors-* CI steps). Needs qemu-user-static (installed by tools/neon_check.sh,
# or here when missing).
# Usage: tools/kernel_dispatch_check.sh [AIOTCTL]   (default .build-static/release/aiotctl)
# Ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
aiotctl=${1:-.build-static/release/aiotctl}
[ -x "$aiotctl" ] || { echo "kernel_dispatch_check: $aiotctl missing; run tools/package.sh first" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || { echo "kernel_dispatch_check: x86-64 only; nothing to do"; echo "0 passed, 0 failed"; exit 0; }
if ! command -v qemu-x86_64-static >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-user-static >&2
fi
passed=0 failed=0
check() {  # check CPU EXPECTED
    local cpu=$1 expected=$2 selected
    selected=$(AIOT_KERNEL= qemu-x86_64-static -cpu "$cpu" "$aiotctl" kernels --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["selected"])')
    if [ "$selected" = "$expected" ]; then
        echo "-cpu $cpu: selected $selected"; passed=$((passed + 1))
    else
        echo "-cpu $cpu: selected $selected, expected $expected"; failed=$((failed + 1))
    fi
    for m in models/nox/W8A8 models/elecdemand/W4A8 models/random/w24f7d32h2n1p1-w8a8 models/random/w12f2d16h2n1p3-w8a8i16p16o16; do
        if qemu-x86_64-static -cpu "$cpu" "$aiotctl" check-vectors --kernel all --model "$m.safetensors" --vectors "$m.vectors.txt" 2>/dev/null; then
            passed=$((passed + 1))
        else
            echo "-cpu $cpu: $m FAILED"; failed=$((failed + 1))
        fi
    done
}
check Nehalem portable
check Haswell avx2
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
