#!/usr/bin/env bash
# The broker-restart measurement of docs/reliability.md (issue 11, point 3): N runs of each
# BrokerRestartRedelivery scenario (one ordered publisher; two publishers whose backlogs reorder
# readings up to 31 steps) against a real persistent mosquitto and the aiotd binary; prints one
# line per run (out-of-order readings, forecasts, late flags) and the test summary. Not run by CI
# (CI runs the same tests 1 and 2 times inside swift-test). Usage: tools/restart_runs.sh [N=10]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
swift build --build-tests >/dev/null
PATH=/usr/sbin:$PATH AIOT_RESTART_RUNS=$N swift test --skip-build --filter BrokerRestartRedelivery 2>&1 \
    | grep -E "^broker restart|✘|Test run with"
