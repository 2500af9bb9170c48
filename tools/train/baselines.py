"""Simple baselines on the same windows and split as the Transformer, and the verdict against them.

persistence   repeat the window's last target value at every horizon step
seasonal      seasonal naive: the target one day earlier (the series' daily period; for horizon step h
              the most recent same-time-of-day value at or before the window's last step)
ridge         ridge regression on the whole flattened window (all features) plus a constant
nlinear       NLinear-style: target channel only, window minus its last value, linear, last value added back
dlinear       DLinear-style: target channel only, moving-average trend and remainder, one linear map each

The linear models are fitted in closed form on the training windows; their ridge strength is chosen
from a fixed grid by validation MSE (the test split is never used for a choice).
"""
from __future__ import annotations

import numpy as np

from tools.train.data import DataSet
from tools.train.verdict import BASELINES, LABELS  # noqa: F401  (one definition, numpy-free)

RIDGE_GRID = (1e-3, 1e-1, 1.0, 10.0, 100.0)
DLINEAR_KERNEL = 25  # the DLinear paper's moving-average kernel, cut to the window if shorter


def metrics(pred_norm: np.ndarray, y_raw: np.ndarray, ds: DataSet) -> dict:
    """MSE/MAE in normalized units and in the target's engineering units; per horizon step if P > 1."""
    y_norm = ds.normalize_y(y_raw)
    err_n = pred_norm - y_norm
    err_e = err_n * ds.target_std   # (pred_n*std+mean) - y_raw, exactly as the model's dequantization
    m = dict(mse=float(np.mean(err_n ** 2)), mae=float(np.mean(np.abs(err_n))),
             mse_eng=float(np.mean(err_e ** 2)), mae_eng=float(np.mean(np.abs(err_e))))
    if err_n.ndim == 2 and err_n.shape[1] > 1:
        m["mse_per_step"] = [float(v) for v in np.mean(err_n ** 2, axis=0)]
    return m


def persistence(ds: DataSet, split: str = "test") -> np.ndarray:
    w = ds.splits[split]
    last = ds.normalize_y(w.x[:, -1, ds.target_index])
    return np.repeat(last[:, None], ds.horizon, axis=1)


def seasonal_naive(ds: DataSet, split: str = "test") -> tuple[np.ndarray, int]:
    """(normalized forecasts, number of forecasts that fell back to persistence because the value a
    day earlier lies before the series or across a gap)."""
    w = ds.splits[split]
    period = ds.season_steps
    pred = persistence(ds, split)
    if period < 2 or ds.series is None:
        return pred, int(pred.size)
    last = w.start + ds.window - 1                       # row of the window's last step
    fallback = 0
    for h in range(ds.horizon):
        row = last + 1 + h
        k = -(-(h + 1) // period)                        # whole days back to reach an observed row
        src = row - k * period
        ok = (src >= 0) & (ds.segment[np.clip(src, 0, None)] == ds.segment[last])
        vals = ds.normalize_y(ds.series[np.clip(src, 0, None)])
        pred[:, h] = np.where(ok, vals, pred[:, h])
        fallback += int(np.sum(~ok))
    return pred, fallback


def _ridge_fit(a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    reg = lam * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # never shrink the constant
    return np.linalg.solve(a.T @ a + reg, a.T @ y)


def _moving_average(x: np.ndarray, kernel: int) -> np.ndarray:
    """DLinear's trend: centered moving average over time with the ends repeated. x [N, W]."""
    k = min(kernel, x.shape[1] - (1 - x.shape[1] % 2))  # odd, at most W
    pad = (k - 1) // 2
    xp = np.concatenate([np.repeat(x[:, :1], pad, 1), x, np.repeat(x[:, -1:], pad, 1)], axis=1)
    c = np.cumsum(np.pad(xp, ((0, 0), (1, 0))), axis=1)
    return (c[:, k:] - c[:, :-k]) / k


def _design(ds: DataSet, split: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(design matrix with a trailing constant column, offset added back to the prediction)."""
    xn = ds.normalize_x(ds.splits[split].x)
    n = len(xn)
    tgt = xn[:, :, ds.target_index]  # the target feature is normalized with the target statistics
    offset = np.zeros((n, 1))
    if kind == "ridge":
        feats = xn.reshape(n, -1)
    elif kind == "nlinear":
        offset = tgt[:, -1:]
        feats = tgt - offset
    elif kind == "dlinear":
        trend = _moving_average(tgt, DLINEAR_KERNEL)
        feats = np.hstack([trend, tgt - trend])
    else:
        raise ValueError(kind)
    return np.hstack([feats, np.ones((n, 1))]), offset


def linear_model(ds: DataSet, kind: str, split: str = "test") -> tuple[np.ndarray, float]:
    """(normalized forecasts on `split`, the ridge strength chosen on validation)."""
    a, off = _design(ds, "train", kind)
    y = ds.normalize_y(ds.splits["train"].y) - off
    av, offv = _design(ds, "val", kind)
    yv = ds.normalize_y(ds.splits["val"].y)
    best = None
    for lam in RIDGE_GRID:
        coef = _ridge_fit(a, y, lam)
        v = float(np.mean((av @ coef + offv - yv) ** 2))
        if best is None or v < best[0]:
            best = (v, lam, coef)
    at, offt = _design(ds, split, kind)
    return at @ best[2] + offt, best[1]


def ridge_solution(ds: DataSet) -> tuple[np.ndarray, np.ndarray, float]:
    """The ridge baseline's own fit (strength chosen on validation): (weight [P, W*F] on the
    normalized window flattened time-major, bias [P], strength), the contract v2 skip path's start."""
    a, _ = _design(ds, "train", "ridge")
    y = ds.normalize_y(ds.splits["train"].y)
    av, _ = _design(ds, "val", "ridge")
    yv = ds.normalize_y(ds.splits["val"].y)
    best = None
    for lam in RIDGE_GRID:
        coef = _ridge_fit(a, y, lam)
        v = float(np.mean((av @ coef - yv) ** 2))
        if best is None or v < best[0]:
            best = (v, lam, coef)
    coef = best[2]
    return coef[:-1].T.copy(), coef[-1].copy(), best[1]


def linear(ds: DataSet, split: str = "test") -> np.ndarray:
    """Ridge on the whole window (kept for callers of the earlier name)."""
    return linear_model(ds, "ridge", split)[0]


def all_baselines(ds: DataSet) -> dict[str, dict]:
    """Test metrics of every baseline, with the facts a reader needs to trust them."""
    test = ds.splits["test"]
    out = {"persistence": metrics(persistence(ds), test.y, ds)}
    pred, fb = seasonal_naive(ds)
    out["seasonal"] = dict(metrics(pred, test.y, ds), period_steps=ds.season_steps, fallback=fb)
    for kind in ("ridge", "nlinear", "dlinear"):
        p, lam = linear_model(ds, kind)
        nfeat = ds.window * (len(ds.spec.features) if kind == "ridge" else (2 if kind == "dlinear" else 1))
        out[kind] = dict(metrics(p, test.y, ds), ridge=lam, params=(nfeat + 1) * ds.horizon)
    return out


def verdict(model_mse: float, base: dict[str, dict], per_step: list[float] | None = None) -> dict:
    """Which baselines a model beats (lower test MSE) and by how much; the best baseline it loses to."""
    rows = []
    for k in BASELINES:
        if k not in base:
            continue
        b = base[k]["mse"]
        rows.append(dict(baseline=k, mse=b, change=(model_mse - b) / b, beats=model_mse < b))
    out = dict(rows=rows, beats_all=all(r["beats"] for r in rows))
    if per_step is not None and "seasonal" in base and "mse_per_step" in base["seasonal"]:
        sn = base["seasonal"]["mse_per_step"]
        out["steps_beating_seasonal"] = int(sum(a < b for a, b in zip(per_step, sn)))
        out["steps"] = len(sn)
    return out


def output_floor(ds: DataSet, lo_hi: tuple[float, float], bits: int, split: str = "test") -> float:
    """MSE of merely rounding the true normalized test targets to a b-bit output grid."""
    from tools.aiot.quant import act_qparams
    s, z = act_qparams(lo_hi[0], lo_hi[1], bits)
    y = ds.normalize_y(ds.splits[split].y)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.clip(z + np.sign(y / s) * np.floor(np.abs(y / s) + 0.5), lo, hi)
    return float(np.mean(((q - z) * s - y) ** 2))
