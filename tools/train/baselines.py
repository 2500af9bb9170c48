"""Baselines on the same windows: persistence (repeat the last value) and a linear (ridge) model."""
from __future__ import annotations

import numpy as np

from tools.train.data import DataSet


def metrics(pred_norm: np.ndarray, y_raw: np.ndarray, ds: DataSet) -> dict[str, float]:
    """MSE/MAE in normalized units and in the target's engineering units."""
    y_norm = ds.normalize_y(y_raw)
    err_n = pred_norm - y_norm
    err_e = err_n * ds.target_std   # (pred_n*std+mean) - y_raw, exactly as the model's dequantization
    return dict(mse=float(np.mean(err_n ** 2)), mae=float(np.mean(np.abs(err_n))),
                mse_eng=float(np.mean(err_e ** 2)), mae_eng=float(np.mean(np.abs(err_e))))


def persistence(ds: DataSet, split: str = "test") -> np.ndarray:
    w = ds.splits[split]
    last = ds.normalize_y(w.x[:, -1, ds.target_index])
    return np.repeat(last[:, None], ds.horizon, axis=1)


def linear(ds: DataSet, split: str = "test", ridge: float = 1e-3) -> np.ndarray:
    """Least squares on the flattened normalized window plus a constant, fitted on train only."""
    def design(s):
        x = ds.normalize_x(ds.splits[s].x).reshape(len(ds.splits[s].x), -1)
        return np.hstack([x, np.ones((len(x), 1))])
    a = design("train")
    y = ds.normalize_y(ds.splits["train"].y)
    coef = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y)
    return design(split) @ coef


def output_floor(ds: DataSet, lo_hi: tuple[float, float], bits: int, split: str = "test") -> float:
    """MSE of merely rounding the true normalized test targets to a b-bit output grid."""
    from tools.aiot.quant import act_qparams
    s, z = act_qparams(lo_hi[0], lo_hi[1], bits)
    y = ds.normalize_y(ds.splits[split].y)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.clip(z + np.sign(y / s) * np.floor(np.abs(y / s) + 0.5), lo, hi)
    return float(np.mean(((q - z) * s - y) ** 2))
