"""tools/train/calibrate.py: validation statistics in the metadata, tensors byte-identical."""
import hashlib
import pathlib

import numpy as np

from tools.aiot import modelfile as MF
from tools.aiot import reference
from tools.train import calibrate, evaluate
from tools.train.data import DataSet, Spec, Windows

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "random" / "w24f1d16h1n1p1-w8a8.safetensors"


def synthetic(window=24, n=300, seed=7) -> DataSet:
    rng = np.random.default_rng(seed)
    series = (np.sin(np.arange(n + window + 1) / 6.0) * 3 + 20 + rng.normal(0, 0.3, n + window + 1))[:, None]
    x = np.stack([series[i:i + window] for i in range(n)])
    y = np.stack([series[i + window:i + window + 1, 0] for i in range(n)])
    spec = Spec("syn", "none", "none", ("x0",), ("degC",), "x0", 60.0, None)
    ds = DataSet(spec=spec, window=window, horizon=1, mean=np.array([20.0]), std=np.array([3.0]), target_index=0)
    for name, a, b in (("train", 0, 200), ("val", 200, 260), ("test", 260, n)):
        ds.splits[name] = Windows(x=x[a:b], y=y[a:b], start=np.arange(a, b))
    return ds


def test_calibration_is_metadata_only_and_matches_a_direct_computation():
    blob = MODEL.read_bytes()
    ds = synthetic()
    out = calibrate.calibrated(blob, ds)
    assert hashlib.sha256(calibrate.tensor_section(out)).hexdigest() == hashlib.sha256(calibrate.tensor_section(blob)).hexdigest()
    m = MF.parse(out)
    c = m.meta["calibration"]
    old = MF.parse(blob)
    assert {k: v for k, v in m.meta.items() if k != "calibration"} == old.meta
    val = ds.splits["val"]
    q = reference.forward_batch(old, evaluate.quantize_windows(old, val.x))
    err = np.abs(evaluate.dequantize(old, q).reshape(-1, 1) - val.y)
    assert c["split"] == "val" and c["windows"] == 60
    assert c["mae"] == [float(err.mean())]
    levels = [float(k) for k in c["abs_residual_quantiles"]]
    assert levels == sorted(levels) == list(calibrate.QUANTILES)
    values = [c["abs_residual_quantiles"][k][0] for k in c["abs_residual_quantiles"]]
    assert values == sorted(values) and values[-1] <= err.max()
    # Idempotent: calibrating again gives the same bytes.
    assert calibrate.calibrated(out, ds) == out
