"""Write one trained QAT model: safetensors (via tools/aiot/export.py), float ONNX, test vectors,
metrics JSON."""
from __future__ import annotations

import copy
import io as _io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from tools.aiot import export as aiot_export
from tools.aiot import modelfile as MF
from tools.aiot import reference, vectors
from tools.train import calibrate, evaluate
from tools.train.data import DataSet
from tools.train.model import Transformer

VECTOR_COUNT = 64


def export_shape_of(s) -> MF.Shape:
    return MF.Shape(window=s.window, features=s.features, d_model=s.d_model, heads=s.heads,
                    layers=s.layers, horizon=s.horizon, skip=getattr(s, "skip", False))


def export_shape(model: Transformer) -> MF.Shape:
    return export_shape_of(model.shape)


def model_bytes(model: Transformer, ds: DataSet, provenance: dict[str, str]) -> bytes:
    return aiot_export.export_model(
        params=model.float_params(), act_ranges=model.act_ranges(), bits=dict(model.bits),
        shape=export_shape(model), features=ds.features_meta(), target=ds.target_meta(),
        sampling_period_s=ds.spec.sampling_period_s, provenance=provenance)


def onnx_bytes(model: Transformer) -> bytes:
    """The same network in float (folded norms, no fake quantization): input `window` [B, W, F]
    normalized, output `forecast` [B, P] normalized."""
    m = copy.deepcopy(model)
    m.set_mode("float")
    m.eval()
    buf = _io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.zeros(1, m.shape.window, m.shape.features),), buf, dynamo=False,
                          input_names=["window"], output_names=["forecast"], opset_version=17,
                          dynamic_axes={"window": {0: "batch"}, "forecast": {0: "batch"}})
    return buf.getvalue()


def vector_indices(n: int, count: int = VECTOR_COUNT) -> np.ndarray:
    """Evenly spread windows over the test split (deterministic)."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


def write_all(model: Transformer, ds: DataSet, out_dir: Path, name: str, provenance: dict[str, str],
              extra_metrics: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Validation error statistics in the metadata (tools/train/calibrate.py); tensors unchanged.
    blob = calibrate.calibrated(model_bytes(model, ds, provenance), ds)
    path = out_dir / f"{name}.safetensors"
    path.write_bytes(blob)
    (out_dir / f"{name}.onnx").write_bytes(onnx_bytes(model))
    qm = reference.load_model(blob)
    test = ds.splits["test"]
    q_in = evaluate.quantize_windows(qm, test.x)
    q_out = reference.forward_batch(qm, q_in)
    idx = vector_indices(len(test.x))
    vectors.write_vectors(out_dir / f"{name}.vectors.txt", q_in[idx], q_out[idx])
    m = evaluate.metrics_from_outputs(qm, q_out, test.y, ds)
    info = dict(model=f"{name}.safetensors", dataset=ds.spec.key, split="test",
                windows=int(len(test.x)), integer=m, file_bytes=len(blob),
                sha256=__import__("hashlib").sha256(blob).hexdigest(), **extra_metrics)
    (out_dir / f"{name}.metrics.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info


def agreement(model: Transformer, ds: DataSet, path: Path) -> dict:
    """Fake-quant (torch) against integer (numpy) outputs on every test window, in output LSBs."""
    from tools.train import train
    qm = reference.load_model(path)
    _, s_out, z_out = qm.act("output")
    x, _ = train.tensors(ds, "test")
    fq = train.predict(model, x).numpy().astype(np.float64)
    q_fq = np.rint(fq / s_out) + z_out
    q_int = reference.forward_batch(qm, evaluate.quantize_windows(qm, ds.splits["test"].x))
    d = np.abs(q_int - q_fq)
    return dict(equal=float(np.mean(d == 0)), within_1lsb=float(np.mean(d <= 1)), max_lsb=float(d.max()))
