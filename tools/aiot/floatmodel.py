"""The float network of the contract in numpy float64 (exporter side only): used to calibrate
activation ranges of random test models. Training uses its PyTorch twin in tools/train."""
from __future__ import annotations

import numpy as np

from .modelfile import Shape
from .quant import positional_encoding


def forward(params: dict, shape: Shape, x: np.ndarray, ranges: dict | None = None) -> np.ndarray:
    """x: normalized window [W, F]. Records min/max of each activation into `ranges` if given."""
    def rec(name, v):
        if ranges is not None:
            lo, hi = ranges.get(name, (np.inf, -np.inf))
            ranges[name] = (min(lo, float(v.min())), max(hi, float(v.max())))
        return v

    def lin(name, v):
        return v @ params[f"{name}.weight"].T + params[f"{name}.bias"]

    x_in = rec("input", x)
    h = rec("input_proj", lin("input_proj", x))
    x = rec("pe_add", h + positional_encoding(shape.window, shape.d_model))
    for l in range(shape.layers):
        p = f"layers.{l}"
        q, k, v = (rec(f"{p}.{n}", lin(f"{p}.{n}", x)) for n in ("q", "k", "v"))
        ctx = np.empty_like(q)
        for hd in range(shape.heads):
            c = slice(hd * shape.dh, (hd + 1) * shape.dh)
            s = rec(f"{p}.scores", q[:, c] @ k[:, c].T / np.sqrt(shape.dh))
            e = np.exp(s - s.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
            ctx[:, c] = a @ v[:, c]
        rec(f"{p}.context", ctx)
        o = rec(f"{p}.o", lin(f"{p}.o", ctx))
        r1 = rec(f"{p}.res1", x + o)
        n1 = rec(f"{p}.norm1", r1 * params[f"{p}.norm1.scale"] + params[f"{p}.norm1.shift"])
        f1 = rec(f"{p}.ffn1", np.maximum(lin(f"{p}.ffn1", n1), 0.0))
        f2 = rec(f"{p}.ffn2", lin(f"{p}.ffn2", f1))
        r2 = rec(f"{p}.res2", n1 + f2)
        x = rec(f"{p}.norm2", r2 * params[f"{p}.norm2.scale"] + params[f"{p}.norm2.shift"])
    pooled = rec("pool", x.mean(axis=0, keepdims=True))
    if not shape.skip:
        return rec("output", lin("head", pooled))[0]
    head = rec("head", lin("head", pooled))
    skip = rec("skip", lin("skip", x_in.reshape(1, -1)))
    return rec("output", head + skip)[0]
