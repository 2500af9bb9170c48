#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser with libFuzzer (Fuzz/, one executable per target).
#
#   bash tools/fuzz.sh                   # each target to at least 10^6 executions (long; not in CI)
#   bash tools/fuzz.sh --runs N          # each target to N executions
#   bash tools/fuzz.sh --smoke [SECONDS] # CI: each target for SECONDS (default 15), seeds only
#   bash tools/fuzz.sh --release ...     # optimized build (faster executions; slower to build)
#   bash tools/fuzz.sh ... TARGET...     # only these (payload safetensors bitstream config vectors
#                                        # spool energylog board-replies command deploy)
#
# Builds Fuzz/ with -sanitize=fuzzer,address (debug unless --release). Each target reads the committed seeds in
# Fuzz/corpus/TARGET and grows a working corpus under Fuzz/.build/work/TARGET (kept between runs,
# never committed). A crash, leak, timeout (10 s) or allocation over 1 GB stops that target and
# leaves its input in Fuzz/.build/artifacts/TARGET/; make it a regression test, then delete it.
# One line per target (executions, libFuzzer's cov/ft, outcome), then "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS=1000000
TIME=0
CONFIG=debug
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) RUNS=0; TIME=15; if [[ "${2:-}" =~ ^[0-9]+$ ]]; then TIME=$2; shift; fi ;;
        --runs) RUNS=$2; shift ;;
        --time) TIME=$2; shift ;;
        --release) CONFIG=release ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) TARGETS+=("$1") ;;
    esac
    shift
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(payload safetensors bitstream config vectors spool energylog board-replies command deploy)

# libFuzzer prints the stack of a crash; Swift's own backtracer would run inside the sanitizer.
export SWIFT_BACKTRACE=enable=no
t0=$(date +%s)
# ld.gold warns "Cannot export local symbol '__asan_...'" for every object: harmless, filtered.
swift build --package-path Fuzz -c $CONFIG -Xswiftc -sanitize=fuzzer,address 2>&1 \
    | grep -v "Cannot export local symbol" | tail -n 5
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz build failed"; echo "0 passed, ${#TARGETS[@]} failed"; exit 1; }
BIN=$(swift build --package-path Fuzz -c $CONFIG -Xswiftc -sanitize=fuzzer,address --show-bin-path)
echo "fuzz build: $(( $(date +%s) - t0 )) s"

# One target per core at a time (each libFuzzer run is single-threaded); the lines are printed in
# the targets' order. FUZZ_JOBS overrides the count.
run_target() {   # run_target TARGET: fuzz it, print its one line, exit status 0 when it passed
    local t=$1
    exe="$BIN/fuzz-$t"
    [ -x "$exe" ] || { echo "fuzz-$t: no such target"; return 1; }
    work=Fuzz/.build/work/$t; art=Fuzz/.build/artifacts/$t; log=Fuzz/.build/logs/$t.log
    # Smoke runs start from the seeds and keep their own logs, apart from the long runs'.
    if [ "$RUNS" -eq 0 ]; then
        work=Fuzz/.build/smoke/work/$t; log=Fuzz/.build/smoke/logs/$t.log; art=Fuzz/.build/smoke/artifacts/$t
        rm -rf "$work"
    fi
    mkdir -p "$work" "$art" "$(dirname "$log")"
    args=(-rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 -artifact_prefix="$art/")
    [ "$RUNS" -gt 0 ] && args+=(-runs="$RUNS")
    [ "$TIME" -gt 0 ] && args+=(-max_total_time="$TIME")
    # TOMLKit 0.6.0 leaks about 1 KB per parsed document (docs/reliability.md): leak detection off
    # for the config target so it keeps looking for crashes.
    # (libFuzzer's per-input check, and AddressSanitizer's own at exit).
    runner=()
    [ "$t" = config ] && args+=(-detect_leaks=0) && runner=(env ASAN_OPTIONS=detect_leaks=0)
    # safetensors seeds are real models (10-14 KB); everything else stays small.
    [ "$t" = safetensors ] && args+=(-max_len=20000) || args+=(-max_len=4096)
    s0=$(date +%s)
    "${runner[@]}" "$exe" "${args[@]}" "$work" "Fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    covft=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        outcome=ok
    else
        outcome="FAILED (exit $rc): $(grep -m1 -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|Fatal error|SUMMARY' "$log")"
        outcome="$outcome; input in $art/, log $log"
    fi
    echo "fuzz-$t: ${execs:-?} executions in $(( $(date +%s) - s0 )) s, ${covft:-cov ? ft ?}, corpus $(ls "$work" | wc -l): $outcome"
    [ $rc -eq 0 ]
}

par="${FUZZ_JOBS:-$(nproc)}"
results=$(mktemp -d); trap 'rm -rf "$results"' EXIT
for i in "${!TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n; done
    ( run_target "${TARGETS[$i]}" > "$results/$i.line"; echo $? > "$results/$i.rc" ) &
done
wait
passed=0; failed=0
for i in "${!TARGETS[@]}"; do
    cat "$results/$i.line"
    if [ "$(cat "$results/$i.rc")" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "fuzz total: $(( $(date +%s) - t0 )) s"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
