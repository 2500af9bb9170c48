#!/bin/sh
# Retrain and re-export every bundled model (models/elecdemand, models/nox) and docs/results.md.
# Arguments go to `python -m tools.train.sweep` (e.g. --quick for the reduced CI run).
set -eu
cd "$(dirname "$0")/../.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" -m tools.train.sweep "$@"
