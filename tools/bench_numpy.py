#!/usr/bin/env python3
"""Times the numpy reference (tools/aiot/reference.py) per inference on every committed model, the
peer that aiot-bench is compared with (tools/bench_engine.sh). Same inputs as aiot-bench: the
model's own vector file; outputs are checked against it so a timing never comes from wrong results.

usage: bench_numpy.py [--models DIR] [--runs N] [--min-seconds S] [--filter TEXT] [--json]"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from aiot import reference  # noqa: E402
from aiot.modelfile import load_model  # noqa: E402
from aiot.vectors import read_vectors  # noqa: E402


def measure(body, items_per_call: int, runs: int, min_seconds: float) -> tuple[float, float]:
    """Median wall and process-CPU seconds per item over `runs` runs, each at least `min_seconds` long."""
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            body()
        t = time.perf_counter() - t0
        if t >= min_seconds / 4:
            calls = max(1, int(calls * min_seconds / max(t, 1e-9)))
            break
        calls *= 4
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            body()
        c1, t1 = time.process_time(), time.perf_counter()
        wall.append((t1 - t0) / (calls * items_per_call))
        cpu.append((c1 - c0) / (calls * items_per_call))
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="models", help="directory searched for NAME.safetensors + NAME.vectors.txt")
    ap.add_argument("--runs", type=int, default=7, help="timed runs; the median is reported")
    ap.add_argument("--min-seconds", type=float, default=0.2, help="minimum duration of one run")
    ap.add_argument("--filter", default=None, help="only models whose path contains TEXT")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()

    rows = []
    for path in sorted(pathlib.Path(args.models).rglob("*.safetensors")):
        vec = path.with_name(path.name[: -len(".safetensors")] + ".vectors.txt")
        if not vec.exists() or (args.filter and args.filter not in str(path)):
            continue
        model = load_model(path)
        inputs, outputs = read_vectors(vec)
        got = reference.forward_batch(model, inputs)
        if not np.array_equal(got, outputs):
            print(f"bench_numpy: {path}: the reference disagrees with its own vectors", file=sys.stderr)
            return 1
        cursor = [0]

        def single():
            i = cursor[0]
            cursor[0] = (i + 1) % len(inputs)
            reference.forward(model, inputs[i])

        s = measure(single, 1, args.runs, args.min_seconds)
        b = measure(lambda: reference.forward_batch(model, inputs), len(inputs), args.runs, args.min_seconds)
        rows.append({"name": path.name[: -len(".safetensors")], "single_us": s[0] * 1e6, "batch_us": b[0] * 1e6,
                     "single_cpu_us": s[1] * 1e6, "batch_cpu_us": b[1] * 1e6, "vectors": len(inputs)})
    if not rows:
        print(f"bench_numpy: no models with vectors under {args.models}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"engine": "numpy reference", "numpy": np.__version__, "runs": args.runs, "models": rows}))
    else:
        width = max(len(r["name"]) for r in rows)
        print(f"{'model':<{width}}  {'single us':>10}  {'batch us':>10}  {'cpu us':>10}")
        for r in rows:
            print(f"{r['name']:<{width}}  {r['single_us']:>10.1f}  {r['batch_us']:>10.1f}  {r['single_cpu_us']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
