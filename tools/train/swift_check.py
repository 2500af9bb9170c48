"""The Swift engine's integer test MSE, from the real test split, through `aiotctl infer`.

    python -m tools.train.swift_check --aiotctl .build/debug/aiotctl models/elecdemand/*.safetensors

For each model: writes the test windows to a temporary CSV (GPL data, deleted afterwards), runs
`aiotctl infer --json` on it, and compares the Swift engine's quantized outputs and forecasts with
the numpy reference and with NAME.metrics.json (integer output checksums exact, MSE recomputed from
Swift's outputs). Exit status 1 on any difference.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tools.aiot import reference
from tools.train import data, evaluate, export_windows


def check(aiotctl: str, path: Path) -> tuple[bool, dict]:
    model = reference.load_model(path)
    key = evaluate.dataset_key(path)
    ds = data.load(key, window=model.shape.window, horizon=model.shape.horizon)
    test = ds.splits["test"]
    with tempfile.TemporaryDirectory(prefix="aiot-windows-") as tmp:
        csv = Path(tmp) / "test.csv"
        export_windows.write_csv(csv, ds, "test")
        run = subprocess.run([aiotctl, "infer", "--json", "--model", str(path), "--input", str(csv)],
                             capture_output=True, text=True)
    if run.returncode != 0:
        return False, {"model": str(path), "error": run.stderr.strip() or run.stdout.strip()}
    doc = json.loads(run.stdout)
    q_swift = np.array([f["quantized"] for f in doc["forecasts"]], dtype=np.int64)
    y_swift = np.array([f["forecast"] for f in doc["forecasts"]], dtype=np.float64)
    q_numpy = reference.forward_batch(model, evaluate.quantize_windows(model, test.x))
    m = evaluate.metrics_from_outputs(model, q_swift, test.y, ds)
    want = json.loads((path.parent / (path.stem + ".metrics.json")).read_text())["integer"]
    res = {"model": str(path), "windows": len(q_swift), "swift_mse": m["mse"], "metrics_json_mse": want["mse"],
           "outputs_equal_numpy": bool(q_swift.shape == q_numpy.shape and np.array_equal(q_swift, q_numpy)),
           "forecasts_equal_numpy": bool(np.array_equal(y_swift, evaluate.dequantize(model, q_numpy))),
           "checksums_equal": m["output_sum"] == want["output_sum"] and m["output_sq_sum"] == want["output_sq_sum"],
           "mse_equal": m["mse"] == want["mse"]}
    ok = all(res[k] for k in ("outputs_equal_numpy", "forecasts_equal_numpy", "checksums_equal", "mse_equal"))
    return ok, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aiotctl", default=".build/debug/aiotctl")
    ap.add_argument("models", nargs="+", type=Path)
    a = ap.parse_args(argv)
    bad = 0
    for p in a.models:
        ok, res = check(a.aiotctl, p)
        bad += not ok
        print(json.dumps({"ok": ok, **res}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
