"""The Swift engine's integer test MSE, from the real test split, through `aiotctl infer`.

    python -m tools.train.swift_check --aiotctl .build/debug/aiotctl models/elecdemand/*.safetensors

For each model: writes the test windows to a temporary CSV (GPL data, deleted afterwards), runs
`aiotctl infer --json` on it, and compares the Swift engine's quantized outputs and forecasts with
the numpy reference and with NAME.metrics.json (integer output checksums exact, MSE recomputed from
Swift's outputs). Exit status 1 on any difference.

--calibration also runs the validation split through `aiotctl infer` and recomputes the model's
`calibration` metadata (tools/train/calibrate.py: per horizon step MAE, RMSE and |residual|
quantiles) from the Swift engine's forecasts with plain Python (math.fsum, the linear quantile
written out), independent of the numpy path that wrote it; they must agree to 1e-12 relative.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tools.aiot import reference
from tools.train import data, evaluate, export_windows


def swift_forecasts(aiotctl: str, path: Path, ds, split: str) -> list[list[float]] | str:
    """The Swift engine's forecasts (engineering units) on one split's windows, or its error text."""
    with tempfile.TemporaryDirectory(prefix="aiot-windows-") as tmp:
        csv = Path(tmp) / f"{split}.csv"
        export_windows.write_csv(csv, ds, split)
        run = subprocess.run([aiotctl, "infer", "--json", "--model", str(path), "--input", str(csv)],
                             capture_output=True, text=True)
    if run.returncode != 0:
        return run.stderr.strip() or run.stdout.strip()
    return [f["forecast"] if isinstance(f["forecast"], list) else [f["forecast"]]
            for f in json.loads(run.stdout)["forecasts"]]


def quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method), written out."""
    s = sorted(xs)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    return s[lo] if lo + 1 >= len(s) else s[lo] + (h - lo) * (s[lo + 1] - s[lo])


def check_calibration(aiotctl: str, path: Path) -> tuple[bool, dict]:
    """The `calibration` metadata against the same statistics from the Swift engine's forecasts."""
    model = reference.load_model(path)
    cal = model.meta.get("calibration")
    res = {"model": str(path), "check": "calibration"}
    if not cal:
        return False, res | {"error": "no calibration in the metadata (python -m tools.train.calibrate)"}
    ds = data.load(evaluate.dataset_key(path), window=model.shape.window, horizon=model.shape.horizon)
    f = swift_forecasts(aiotctl, path, ds, cal["split"])
    if isinstance(f, str):
        return False, res | {"error": f}
    y = ds.splits[cal["split"]].y.reshape(len(f), -1)
    got = {"mae": [], "rmse": [], "q": {k: [] for k in cal["abs_residual_quantiles"]}}
    for h in range(len(cal["mae"])):
        a = [abs(f[i][h] - float(y[i][h])) for i in range(len(f))]
        got["mae"].append(math.fsum(a) / len(a))
        got["rmse"].append(math.sqrt(math.fsum(v * v for v in a) / len(a)))
        for k in got["q"]:
            got["q"][k].append(quantile(a, float(k)))
    def close(u, v):
        return len(u) == len(v) and all(abs(p - q) <= 1e-12 * max(1.0, abs(q)) for p, q in zip(u, v))
    ok = len(f) == cal["windows"] and close(got["mae"], cal["mae"]) and close(got["rmse"], cal["rmse"]) \
        and all(close(got["q"][k], cal["abs_residual_quantiles"][k]) for k in got["q"])
    return ok, res | {"split": cal["split"], "windows": len(f), "swift_mae": got["mae"][:1], "meta_mae": cal["mae"][:1],
                      "swift_q": {k: v[:1] for k, v in got["q"].items()},
                      "meta_q": {k: v[:1] for k, v in cal["abs_residual_quantiles"].items()}}


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
    ap.add_argument("--calibration", action="store_true",
                    help="also recompute each model's calibration metadata from the Swift engine's forecasts")
    ap.add_argument("models", nargs="+", type=Path)
    a = ap.parse_args(argv)
    bad = 0
    for p in a.models:
        for fn in (check, check_calibration) if a.calibration else (check,):
            ok, res = fn(a.aiotctl, p)
            bad += not ok
            print(json.dumps({"ok": ok, **res}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
