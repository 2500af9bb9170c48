"""The model's validation error statistics in its metadata (`calibration`, docs/arithmetic.md §10).

    python -m tools.train.calibrate models/elecdemand/W8A8.safetensors [...] [--bundled]

For each model file: runs the integer model (numpy reference) on every validation window of its data
set, and stores per horizon step the MAE, RMSE and the quantiles of |residual| (QUANTILES) in the
target's engineering units, the units aiotd publishes. The file is rewritten with the same tensors:
the tensor section is checked byte-identical (SHA-256) and the committed test vectors still match the
numpy reference bit for bit, or nothing is written. The exporter (exporting.py) calls `calibrated`
on every model it writes. The metadata only grows: the arithmetic and the contract version are
unchanged, and files without `calibration` still load everywhere.

--bundled also updates what names a bundled model's bytes: NAME.metrics.json and summary.json
(`sha256`, `file_bytes`), and the byte columns of docs/results.md and models/README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

from tools.aiot import modelfile as MF
from tools.aiot import reference, vectors
from tools.train import data, evaluate

QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
REPO = Path(__file__).resolve().parents[2]


def statistics(model, ds: data.DataSet, split: str = "val") -> dict:
    """Per horizon step: MAE, RMSE, |residual| quantiles (numpy's default linear interpolation) of
    the dequantized forecasts against the raw targets of `split`."""
    w = ds.splits[split]
    q_out = reference.forward_batch(model, evaluate.quantize_windows(model, w.x))
    y = evaluate.dequantize(model, q_out).reshape(len(w.y), -1)
    err = y - w.y
    a = np.abs(err)
    return {
        "split": split,
        "windows": int(len(w.y)),
        "mae": [float(v) for v in a.mean(axis=0)],
        "rmse": [float(v) for v in np.sqrt((err ** 2).mean(axis=0))],
        "abs_residual_quantiles": {f"{q:g}": [float(v) for v in np.quantile(a, q, axis=0)] for q in QUANTILES},
        "units": ds.spec.units[ds.target_index],
    }


def tensor_section(blob: bytes) -> bytes:
    (n,) = struct.unpack("<Q", blob[:8])
    return blob[8 + n:]


def calibrated(blob: bytes, ds: data.DataSet) -> bytes:
    """The same model file with `calibration` in its metadata; tensors byte-identical."""
    m = MF.parse(blob)
    meta = dict(m.meta)
    meta["calibration"] = statistics(m, ds)
    out = MF.serialize(meta, m.tensors)
    if hashlib.sha256(tensor_section(out)).digest() != hashlib.sha256(tensor_section(blob)).digest():
        raise RuntimeError("the tensor section changed while adding calibration; nothing written")
    return out


def check_vectors(path: Path) -> int:
    """The committed vectors against the numpy reference on the (rewritten) file; returns how many."""
    vpath = path.with_suffix(".vectors.txt")
    q_in, q_out = vectors.read_vectors(vpath)
    got = reference.forward_batch(reference.load_model(path), q_in)
    if not np.array_equal(np.asarray(got).reshape(q_out.shape), q_out):
        raise RuntimeError(f"{vpath}: outputs differ after rewriting {path}")
    return len(q_in)


def update_bundled(path: Path, old: bytes, new: bytes) -> None:
    """metrics.json, summary.json and the byte columns of the docs, for a model under models/<key>/."""
    old_sha, new_sha = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    name, folder = path.stem, path.parent
    mj = folder / f"{name}.metrics.json"
    if mj.exists():
        info = json.loads(mj.read_text())
        if info.get("sha256") == old_sha:
            info["sha256"], info["file_bytes"] = new_sha, len(new)
            mj.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    sj = folder / "summary.json"
    if sj.exists():
        s = json.loads(sj.read_text())
        c = s.get("configs", {}).get(name)
        if c and c.get("sha256") == old_sha:
            c["sha256"], c["file_bytes"] = new_sha, len(new)
            sj.write_text(json.dumps(s, indent=1, sort_keys=True) + "\n")
    key = folder.name
    readme = REPO / "models" / "README.md"
    if readme.exists():
        pat = re.compile(rf"^(\| `{re.escape(key)}/{re.escape(name)}\.safetensors` \|.*\| ){len(old)}( \|)$", re.M)
        readme.write_text(pat.sub(rf"\g<1>{len(new)}\g<2>", readme.read_text()))
    results = REPO / "docs" / "results.md"
    if results.exists():
        text = results.read_text()
        # The data set's own section ("## <key>: ..."), the row of this configuration.
        parts = re.split(r"(?m)^(?=## )", text)
        for i, part in enumerate(parts):
            if part.startswith(f"## {key}:"):
                parts[i] = re.sub(rf"(?m)^(\| \*\*{re.escape(name)}\*\* integer.*\| ){len(old)} B( \|)$",
                                  rf"\g<1>{len(new)} B\g<2>", part)
        results.write_text("".join(parts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data", choices=sorted(data.SPECS), help="data set (default: from the model's folder)")
    ap.add_argument("--bundled", action="store_true", help="also update metrics.json, summary.json and the docs' byte columns")
    a = ap.parse_args(argv)
    for p in a.models:
        old = p.read_bytes()
        m = MF.parse(old)
        ds = data.load(a.data or evaluate.dataset_key(p), window=m.shape.window, horizon=m.shape.horizon)
        new = calibrated(old, ds)
        p.write_bytes(new)
        try:
            n = check_vectors(p) if p.with_suffix(".vectors.txt").exists() else 0
        except Exception:
            p.write_bytes(old)
            raise
        if a.bundled:
            update_bundled(p, old, new)
        c = MF.parse(new).meta["calibration"]
        print(f"{p}: {len(old)} -> {len(new)} bytes, tensor section unchanged, {n} vectors bit-exact; "
              f"validation MAE {c['mae'][0]:.5f} RMSE {c['rmse'][0]:.5f} q99 {c['abs_residual_quantiles']['0.99'][0]:.5f} "
              f"q99.9 {c['abs_residual_quantiles']['0.999'][0]:.5f} {c['units']} (step 1 of {len(c['mae'])}, {c['windows']} windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
