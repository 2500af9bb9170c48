"""Integer test metrics of an exported model, from the numpy reference over the real test split.

    python -m tools.train.evaluate models/elecdemand/W8A8.safetensors [--check]

prints MSE/MAE (normalized and engineering units) of integer inference on every test window;
--check compares them with NAME.metrics.json beside the model and fails on any difference.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tools.aiot import io as aiot_io
from tools.aiot import reference
from tools.train import data


def quantize_windows(model, x_raw: np.ndarray) -> np.ndarray:
    """Raw windows [N, W, F] -> quantized input [N, W, F] int64 (docs §9, per window)."""
    return np.stack([np.asarray(aiot_io.quantize_input(model, w), dtype=np.int64) for w in x_raw])


def dequantize(model, q_out: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(aiot_io.dequantize_output(model, q), dtype=np.float64) for q in q_out])


def metrics_from_outputs(model, q_out: np.ndarray, y_raw: np.ndarray, ds: data.DataSet) -> dict:
    """Normalized errors: (q - z_out) * s_out against (y - mean_y) / std_y. Engineering-unit errors:
    the dequantized forecast (docs §9) against the raw target. Also exact integer checksums of the
    outputs, so another engine can prove it produced the same integers on the same windows."""
    q_out = np.asarray(q_out, dtype=np.int64)
    y_norm = np.stack([aiot_io.dequantize_output_normalized(model, q) for q in q_out])
    y_eng = dequantize(model, q_out)
    t = (np.asarray(y_raw, dtype=np.float64) - ds.target_mean) / ds.target_std
    m = dict(mse=float(np.mean((y_norm - t) ** 2)), mae=float(np.mean(np.abs(y_norm - t))),
             mse_eng=float(np.mean((y_eng - y_raw) ** 2)), mae_eng=float(np.mean(np.abs(y_eng - y_raw))),
             output_sum=int(q_out.sum()), output_sq_sum=int((q_out * q_out).sum()),
             windows=int(len(q_out)))
    if q_out.ndim == 2 and q_out.shape[1] > 1:
        m["mse_per_step"] = [float(v) for v in np.mean((y_norm - t) ** 2, axis=0)]
    return m


def model_meta(model) -> dict:
    meta = getattr(model, "meta", None)
    if meta is None and isinstance(model, dict):
        meta = model.get("meta")
    return meta


def dataset_key(path: Path) -> str:
    """models/<key>/NAME.safetensors names its data set by folder; NAME.metrics.json says so too."""
    mj = path.parent / (path.stem + ".metrics.json")
    if mj.exists():
        return json.loads(mj.read_text())["dataset"]
    return path.parent.name


def evaluate_file(path: Path, key: str | None = None) -> dict[str, float]:
    model = reference.load_model(path)
    key = key or dataset_key(path)
    shape = model.shape
    ds = data.load(key, window=shape.window, horizon=shape.horizon)
    test = ds.splits["test"]
    q_out = reference.forward_batch(model, quantize_windows(model, test.x))
    return metrics_from_outputs(model, q_out, test.y, ds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data", choices=sorted(data.SPECS), help="data set (default: from the model's folder)")
    ap.add_argument("--check", action="store_true", help="compare with NAME.metrics.json")
    a = ap.parse_args(argv)
    bad = 0
    for p in a.models:
        m = evaluate_file(p, a.data)
        line = {"model": str(p), **m}
        if a.check:
            mj = p.parent / (p.stem + ".metrics.json")
            want = json.loads(mj.read_text())["integer"]
            same = all(want[k] == m[k] for k in want)
            line["matches_metrics_json"] = same
            bad += not same
        print(json.dumps(line))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
