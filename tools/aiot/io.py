"""Input and output helpers (docs/arithmetic.md §9), float64 in the documented order."""
from __future__ import annotations

import numpy as np

from . import quant as Q
from .modelfile import Model


def quantize_input(model: Model, x_raw: np.ndarray) -> np.ndarray:
    """Raw readings [W, F] in engineering units -> q_in [W, F] (int64). Rejects non-finite values."""
    x = np.asarray(x_raw, dtype=np.float64).reshape(model.shape.window, model.shape.features)
    if not np.all(np.isfinite(x)):
        raise ValueError("window holds a non-finite reading")
    bits, scale, zp = model.act("input")
    mean = np.array([f["mean"] for f in model.meta["features"]], dtype=np.float64)
    std = np.array([f["std"] for f in model.meta["features"]], dtype=np.float64)
    v = (x - mean) / std
    return Q.sat(zp + Q.round_half_away(v / scale), bits).astype(np.int64)


def dequantize_output(model: Model, q_out: np.ndarray) -> np.ndarray:
    """q_out [P] -> forecast in the target's engineering units."""
    _, scale, zp = model.act("output")
    t = model.meta["target"]
    y_norm = (np.asarray(q_out, dtype=np.int64) - zp).astype(np.float64) * scale
    return y_norm * t["std"] + t["mean"]


def dequantize_output_normalized(model: Model, q_out: np.ndarray) -> np.ndarray:
    _, scale, zp = model.act("output")
    return (np.asarray(q_out, dtype=np.int64) - zp).astype(np.float64) * scale
