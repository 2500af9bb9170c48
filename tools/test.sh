#!/usr/bin/env bash
# Runs every test of aiot-runtime: Python (numpy reference, exporter, training), Swift (engines,
# loader, board model, daemon against a real mosquitto), the reduced training sweep checked by the
# Swift engine, and the RTL (lint, Verilator, Icarus, synthesis fit, the iCE40 place-and-route). Installs what is missing first
# (tools/setup.sh). Ends with one summary line; exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

LOGS=$(mktemp -d /tmp/aiot-test-XXXXXX)
QUICK=$(mktemp -d /tmp/aiot-quick-XXXXXX)
trap 'rm -rf "$QUICK"' EXIT
step() {   # step NAME COMMAND...: run, keep the output for the summary
    local name=$1 t0=$SECONDS; shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$LOGS/$name.log"
    # Wall time per step, for the CI budget (about 40 min in all).
    echo "-- $name took $((SECONDS - t0)) s"
}

step check-imports bash tools/check_imports.sh --self-test
step pytest .venv/bin/python -m pytest -q tools

step swift-build swift build --build-tests
step swift-test swift test --skip-build
# Every parser under libFuzzer (sanitizer build of Fuzz/ + 10 s per target from the seeds).
step fuzz-smoke bash tools/fuzz.sh --smoke 10
# The C kernels' NEON variant cross-built for aarch64 and run under qemu-user, and the x86 variants
# natively, against the scalar reference (installs the cross compiler and qemu-user-static).
step neon-check bash tools/neon_check.sh 500

# Training: a reduced-epoch sweep into a temp dir (self-checks numpy on its own vectors), then the
# Swift engine on what it exported, then the Swift engine against the bundled models' integer test
# MSE recomputed from the real test split, and their calibration metadata from the validation split.
step train-quick bash tools/train/sweep.sh --quick --keep --out "$QUICK"
for m in "$QUICK"/*/*.safetensors models/{elecdemand,nox,keywest}*/*.safetensors; do
    origin=bundled; case "$m" in "$QUICK"/*) origin=quick;; esac
    step "vectors-$origin-$(basename "$(dirname "$m")")-$(basename "$m" .safetensors)" \
        .build/debug/aiotctl check-vectors --kernel all --model "$m" --vectors "${m%.safetensors}.vectors.txt"
done
# The Debian package (tools/package.sh: release binaries with the static Swift runtime); its aiotctl
# checks the bundled models over their whole test splits (a debug build takes minutes for that).
step package bash tools/package.sh
# The packaged aiotctl under qemu-user on CPUs without AVX2 / AVX-512: the run-time kernel choice.
step kernel-dispatch bash tools/kernel_dispatch_check.sh
step swift-mse .venv/bin/python -m tools.train.swift_check --calibration --aiotctl .build-static/release/aiotctl \
    models/{elecdemand,nox,keywest}*/*.safetensors

# RTL: lint, Verilator and Icarus on the vectors, the corrupted-vector check, co-simulation, the
# XC7S15 fit; then aiotctl through the RTL co-simulation against the software engine.
step firmware bash firmware/run_tests.sh
# The iCE40UP5K core through yosys, nextpnr-ice40 (placement, routing, timing) and icepack: fails
# when it no longer fits the part or meets the 16 MHz target (about 2 min here).
step ice40 bash firmware/ice40/build.sh
step cosim-aiotctl bash firmware/cosim/check_aiotctl.sh
step cosim-aiotctl-ice40 env COSIM_CONTRACT=v1 bash firmware/cosim/check_aiotctl.sh .build/debug/aiotctl firmware/build/cosim-ice40/aiot-rtl-sim

# The package under a real systemd booted in a container, including a deliberately unreadable
# configuration that must make the checks fail.
step service env AIOT_DEB="$(tail -n 1 "$LOGS/package.log")" bash tools/test_service.sh

# One closing line over every runner's own count.
python3 - "$LOGS" <<'PY'
import pathlib, re, sys
passed = failed = 0
for log in sorted(pathlib.Path(sys.argv[1]).glob("*.log")):
    text = log.read_text(errors="replace")
    if log.name == "pytest.log":
        m = re.findall(r"(\d+) passed", text); passed += int(m[-1]) if m else 0
        m = re.findall(r"(\d+) failed", text); failed += int(m[-1]) if m else 0
    elif log.name == "swift-test.log":
        m = re.findall(r"Executed (\d+) tests?, with (\d+) failures", text)
        if m: passed += int(m[-1][0]) - int(m[-1][1]); failed += int(m[-1][1])
        m = re.findall(r"Test run with (\d+) tests", text)
        if m: passed += int(m[-1])
    elif log.name.startswith("vectors-"):
        m = re.search(r"(\d+) of (\d+) vectors bit-identical", text)
        if m: passed += int(m.group(1)); failed += int(m.group(2)) - int(m.group(1))
    else:   # firmware and co-simulation lines end with "N passed, N failed" (the deliberate
            # corrupted-vector run ends otherwise and is checked by run_tests.sh itself)
        for p, f in re.findall(r"(\d+) passed, (\d+) failed[ \t]*$", text, re.M):
            passed += int(p); failed += int(f)
print(f"all: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
