#!/usr/bin/env bash
# Cross-compiles the C kernels (Sources/CKernels) for aarch64 and runs tools/kernels/kernel_check.c
# under qemu-user: the NEON variant against the scalar reference on random operands. The Swift
# engine itself is not cross-built (no aarch64 Swift SDK here); the chain is NEON == scalar C
# (here) and scalar C == Swift kernel == committed vectors (KernelVariantTests on the build host).
# Installs its tools when missing (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
# qemu-user-static). Also runs the check natively on every x86 variant this CPU has.
# Usage: tools/neon_check.sh [TRIALS] [SEED]      (default 2000 trials, fixed seed)
# Ends with "N passed, M failed" (one count per variant checked).
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-2000}
seed=${2:-20261206}
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    echo "neon_check: installing the aarch64 cross compiler and qemu-user-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static >&2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
run() {  # run LABEL COMMAND...
    echo "== $1"
    if "${@:2}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
aarch64-linux-gnu-gcc -O2 -static -Wall -Wextra -ISources/CKernels/include -ISources/CKernels \
    tools/kernels/kernel_check.c Sources/CKernels/*.c -o "$out/kernel_check_aarch64"
run "neon (aarch64, qemu-user)" qemu-aarch64-static "$out/kernel_check_aarch64" 3 "$trials" "$seed"
if [ "$(uname -m)" = x86_64 ] && command -v clang >/dev/null; then
    clang -O2 -Wall -Wextra -ISources/CKernels/include -ISources/CKernels \
        tools/kernels/kernel_check.c Sources/CKernels/*.c -o "$out/kernel_check_x86"
    for v in 1 2; do
        rc=0; "$out/kernel_check_x86" "$v" 1 "$seed" >/dev/null || rc=$?
        if [ "$rc" = 2 ]; then echo "== variant $v: not supported by this CPU, skipped"; continue; fi
        run "x86 variant $v (1 avx2, 2 avx512)" "$out/kernel_check_x86" "$v" "$trials" "$seed"
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
