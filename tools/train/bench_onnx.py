"""Times ONNX Runtime (one thread) per inference on the float ONNX export of every bundled trained
model: the peer for the Swift integer engine in the performance comparison. Inputs are the model's
own vectors, dequantized to the normalized float window the ONNX network takes. Same JSON shape as
tools/bench_numpy.py, with `name` = path under --models without the suffix (e.g. elecdemand/W8A8).

usage: python -m tools.train.bench_onnx [--models DIR] [--runs N] [--min-seconds S] [--filter TEXT] [--json]"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort

from tools.aiot import reference
from tools.aiot.vectors import read_vectors
from tools.bench_numpy import measure


def session(path: pathlib.Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="models")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--min-seconds", type=float, default=0.2)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    root = pathlib.Path(a.models)
    rows = []
    for onnx_path in sorted(root.rglob("*.onnx")):
        base = onnx_path.with_suffix("")
        st, vec = base.with_suffix(".safetensors"), base.with_name(base.name + ".vectors.txt")
        if not (st.exists() and vec.exists()) or (a.filter and a.filter not in str(onnx_path)):
            continue
        model = reference.load_model(st)
        q_in, _ = read_vectors(vec)
        _, s_in, z_in = model.act("input")
        x = ((q_in - z_in) * s_in).astype(np.float32).reshape(len(q_in), model.shape.window, model.shape.features)
        sess = session(onnx_path)
        out = sess.run(None, {"window": x})[0]
        if out.shape != (len(x), model.shape.horizon) or not np.all(np.isfinite(out)):
            print(f"bench_onnx: {onnx_path}: unexpected output {out.shape}", file=sys.stderr)
            return 1
        singles = [x[i:i + 1] for i in range(len(x))]
        cursor = [0]

        def single():
            i = cursor[0]
            cursor[0] = (i + 1) % len(singles)
            sess.run(None, {"window": singles[i]})

        s = measure(single, 1, a.runs, a.min_seconds)
        b = measure(lambda: sess.run(None, {"window": x}), len(x), a.runs, a.min_seconds)
        rows.append({"name": str(base.relative_to(root)), "single_us": s[0] * 1e6, "batch_us": b[0] * 1e6,
                     "single_cpu_us": s[1] * 1e6, "batch_cpu_us": b[1] * 1e6, "vectors": len(x)})
    if not rows:
        print(f"bench_onnx: no NAME.onnx with NAME.safetensors and vectors under {root}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"engine": "onnxruntime", "onnxruntime": ort.__version__, "threads": 1,
                          "runs": a.runs, "models": rows}))
    else:
        w = max(len(r["name"]) for r in rows)
        print(f"{'model':<{w}}  {'single us':>10}  {'batch us':>10}  {'cpu us':>10}")
        for r in rows:
            print(f"{r['name']:<{w}}  {r['single_us']:>10.1f}  {r['batch_us']:>10.1f}  {r['single_cpu_us']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
