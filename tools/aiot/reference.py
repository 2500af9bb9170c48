"""The numpy reference of the integer contract (docs/arithmetic.md §4-§5).

Forward path: int64 numpy only, no floats. Each block cites its equation."""
from __future__ import annotations

import numpy as np

from . import quant as Q
from .modelfile import Model, load_model  # noqa: F401  (re-exported for callers)

I64 = np.int64


def linear(model: Model, name: str, x_name: str, y_name: str, x: np.ndarray) -> np.ndarray:
    """(E1) acc = B + sum_k (x - z_x)(W - z_W); y = REQ(acc)."""
    _, _, zx = model.act(x_name)
    by, _, zy = model.act(y_name)
    w, _, zw = model.weight(f"{name}.weight")
    b = model.tensors[f"{name}.bias"]
    acc = (x - zx) @ (w - zw).T + b
    r = model.rq(name)
    return Q.requant(acc, r["m"], r["n"], zy, by)


def add(model: Model, name: str, a_name: str, b_name: str, y_name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(E2) acc = (a - z_a) m1 + (b - z_b) m2; y = SAT(z_y + RSHR(acc, n))."""
    _, _, za = model.act(a_name)
    _, _, zb = model.act(b_name)
    by, _, zy = model.act(y_name)
    r = model.rq(name)
    acc = (a - za) * I64(r["m1"]) + (b - zb) * I64(r["m2"])
    return Q.sat(I64(zy) + Q.rshr(acc, r["n"]), by)


def norm(model: Model, name: str, x_name: str, x: np.ndarray) -> np.ndarray:
    """(E3) acc[t, c] = B[c] + (x - z_x)(G[c] - z_G); y = REQ(acc)."""
    _, _, zx = model.act(x_name)
    by, _, zy = model.act(name)
    g, _, zg = model.weight(f"{name}.weight")
    acc = (x - zx) * (g - zg)[None, :] + model.tensors[f"{name}.bias"][None, :]
    r = model.rq(name)
    return Q.requant(acc, r["m"], r["n"], zy, by)


def attention(model: Model, l: int, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(E5) scores, (E6) softmax, (E7) context, per head; returns the context [W, d]."""
    p = f"layers.{l}"
    sh = model.shape
    _, _, zq = model.act(f"{p}.q")
    _, _, zk = model.act(f"{p}.k")
    _, _, zv = model.act(f"{p}.v")
    bs, _, zs = model.act(f"{p}.scores")
    ba, _, za = model.act(f"{p}.probs")
    bc, _, zc = model.act(f"{p}.context")
    rs, rc = model.rq(f"{p}.scores"), model.rq(f"{p}.context")
    table = model.tensors[f"{p}.softmax.exp"]
    R = I64((1 << ba) - 1)
    ctx = np.empty((sh.window, sh.d_model), dtype=I64)
    for h in range(sh.heads):
        cols = slice(h * sh.dh, (h + 1) * sh.dh)
        acc = (q[:, cols] - zq) @ (k[:, cols] - zk).T                       # (E5)
        s = Q.requant(acc, rs["m"], rs["n"], zs, bs)
        mx = s.max(axis=1, keepdims=True)                                    # (E6)
        e = table[mx - s]
        den = e.sum(axis=1, keepdims=True)
        inv = (R << I64(Q.SOFTMAX_SHIFT)) // den
        a = Q.sat(I64(Q.lo(ba)) + Q.rshr(e * inv, Q.SOFTMAX_SHIFT), ba)
        acc = (a - za) @ (v[:, cols] - zv)                                   # (E7)
        ctx[:, cols] = Q.requant(acc, rc["m"], rc["n"], zc, bc)
    return ctx


def forward(model: Model, q_in: np.ndarray) -> np.ndarray:
    """§5: quantized window [W, F] (or flat W*F, time-major) -> quantized forecast [P]."""
    sh = model.shape
    x = np.asarray(q_in, dtype=I64).reshape(sh.window, sh.features)
    bi = model.act("input")[0]
    if x.min() < Q.lo(bi) or x.max() > Q.hi(bi):
        raise ValueError(f"input holds values outside the {bi}-bit input range")
    h = linear(model, "input_proj", "input", "input_proj", x)
    x = add(model, "pe_add", "input_proj", "pe", "pe_add", h, model.tensors["pe"])
    x_name = "pe_add"
    for l in range(sh.layers):
        p = f"layers.{l}"
        q = linear(model, f"{p}.q", x_name, f"{p}.q", x)
        k = linear(model, f"{p}.k", x_name, f"{p}.k", x)
        v = linear(model, f"{p}.v", x_name, f"{p}.v", x)
        c = attention(model, l, q, k, v)
        o = linear(model, f"{p}.o", f"{p}.context", f"{p}.o", c)
        r1 = add(model, f"{p}.res1", x_name, f"{p}.o", f"{p}.res1", x, o)
        n1 = norm(model, f"{p}.norm1", f"{p}.res1", r1)
        f1 = linear(model, f"{p}.ffn1", f"{p}.norm1", f"{p}.ffn1", n1)
        f1 = np.maximum(f1, I64(model.act(f"{p}.ffn1")[2]))                   # (E4)
        f2 = linear(model, f"{p}.ffn2", f"{p}.ffn1", f"{p}.ffn2", f1)
        r2 = add(model, f"{p}.res2", f"{p}.norm1", f"{p}.ffn2", f"{p}.res2", n1, f2)
        x = norm(model, f"{p}.norm2", f"{p}.res2", r2)
        x_name = f"{p}.norm2"
    _, _, zx = model.act(x_name)                                              # (E8)
    bp, _, zp = model.act("pool")
    r = model.rq("pool")
    pooled = Q.requant((x - zx).sum(axis=0, keepdims=True), r["m"], r["n"], zp, bp)
    if not sh.skip:
        return linear(model, "head", "pool", "output", pooled)[0]
    # v2 (§5 steps 15-17): head on its own activation, the skip path on the flattened input window
    head = linear(model, "head", "pool", "head", pooled)[0]
    skip = linear(model, "skip", "input", "skip", q_in_flat(model, q_in))[0]
    return add(model, "output", "head", "skip", "output", head, skip)


def q_in_flat(model: Model, q_in: np.ndarray) -> np.ndarray:
    """The input window as one row [1, W*F], time-major (the skip path's x of (E1))."""
    return np.asarray(q_in, dtype=I64).reshape(1, model.shape.window * model.shape.features)


def forward_batch(model: Model, q_in: np.ndarray) -> np.ndarray:
    """[B, W*F] or [B, W, F] -> [B, P]."""
    return np.stack([forward(model, w) for w in np.asarray(q_in)])
