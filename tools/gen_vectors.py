"""Regenerate the random test models and their vectors under models/random/.

    python3 tools/gen_vectors.py [--out models/random] [--out-v2 models/random-v2] [--vectors 64]

Each model is a random float network of the contract, calibrated on smooth random windows (ranges
shrunk by 10% so that saturation is exercised), exported at its bit widths; each vector file holds
random windows, edge windows (all minimum, all maximum, all zero point, alternating) and the numpy
reference's outputs. Deterministic: fixed seeds, so a rerun reproduces the committed bytes."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aiot import floatmodel, reference  # noqa: E402
from aiot import quant as Q  # noqa: E402
from aiot.export import bits_config, export_model  # noqa: E402
from aiot.modelfile import Shape, load_model  # noqa: E402
from aiot.vectors import write_vectors  # noqa: E402

DEFAULT = Shape(window=24, features=1, d_model=16, heads=1, layers=1, horizon=1)

# (name, shape, configuration, extra bit overrides)
SPECS = [
    ("w24f1d16h1n1p1-w8a8", DEFAULT, "W8A8", {}),
    ("w24f1d16h1n1p1-w6a6", DEFAULT, "W6A6", {}),
    ("w24f1d16h1n1p1-w4a4", DEFAULT, "W4A4", {}),
    ("w24f1d16h1n1p1-w4a8", DEFAULT, "W4A8", {}),
    ("w24f1d16h1n1p1-w6a8", DEFAULT, "W6A8", {}),
    ("w24f1d16h1n1p1-w8a8o16", DEFAULT, "W8A8O16", {}),
    ("w12f2d8h2n2p3-w4a8", Shape(12, 2, 8, 2, 2, 3), "W4A8", {}),
    ("w24f7d32h2n1p1-w8a8", Shape(24, 7, 32, 2, 1, 1), "W8A8", {}),
    ("w12f1d32h1n2p3-w6a8i16o16", Shape(12, 1, 32, 1, 2, 3), "W6A8", {"input_bits": 16, "pe_bits": 12, "output_bits": 16}),
    ("w24f2d8h1n1p3-w6a6", Shape(24, 2, 8, 1, 1, 3), "W6A6", {}),
    ("w24f1d16h1n1p1-w8a8i16p16o16", DEFAULT, "W8A8", {"input_bits": 16, "pe_bits": 16, "output_bits": 16}),
    # two heads on a 16-bit layer input: the engines' wide product with per-head layouts
    ("w12f2d16h2n1p3-w8a8i16p16o16", Shape(12, 2, 16, 2, 1, 3), "W8A8", {"input_bits": 16, "pe_bits": 16, "output_bits": 16}),
]

# contract v2 (linear skip path), in their own folder so v1-only consumers (the RTL) can tell them apart
SKIP = Shape(window=24, features=1, d_model=16, heads=1, layers=1, horizon=1, skip=True)
SPECS_V2 = [
    ("w24f1d16h1n1p1-w8a8-skip", SKIP, "W8A8", {}),
    ("w24f1d16h1n1p1-w4a8-skip", SKIP, "W4A8", {}),
    ("w24f1d16h1n1p1-w8a8i16p16o16-skip", SKIP, "W8A8", {"input_bits": 16, "pe_bits": 16, "output_bits": 16}),
    ("w12f2d8h2n2p3-w6a8o16-skip", Shape(12, 2, 8, 2, 2, 3, skip=True), "W6A8", {"output_bits": 16}),
    ("w24f2d16h1n1p48-w8a8i16o16-skip", Shape(24, 2, 16, 1, 1, 48, skip=True), "W8A8", {"input_bits": 16, "output_bits": 16}),
]


def random_params(shape: Shape, rng: np.random.Generator) -> dict[str, np.ndarray]:
    from aiot.modelfile import linear_layers, norm_layers
    p = {}
    for name, _, _, out, inp in linear_layers(shape):
        k = 1.0 / np.sqrt(inp)
        p[f"{name}.weight"] = rng.uniform(-k, k, size=(out, inp))
        p[f"{name}.bias"] = rng.uniform(-k, k, size=(out,))
    for name, _, _ in norm_layers(shape):
        p[f"{name}.scale"] = rng.uniform(0.5, 1.5, size=shape.d_model)
        p[f"{name}.shift"] = rng.uniform(-0.3, 0.3, size=shape.d_model)
    return p


def random_windows(shape: Shape, count: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth multi-sine signals with noise, roughly unit variance per feature."""
    t = np.arange(shape.window, dtype=np.float64)
    out = np.empty((count, shape.window, shape.features))
    for i in range(count):
        for f in range(shape.features):
            freq = rng.uniform(0.05, 0.6, size=3)
            phase = rng.uniform(0, 2 * np.pi, size=3)
            amp = rng.uniform(0.2, 1.0, size=3)
            out[i, :, f] = (amp[:, None] * np.sin(freq[:, None] * t + phase[:, None])).sum(0) \
                + rng.normal(0, 0.2, size=shape.window) + rng.normal(0, 0.5)
    return out


def build(name: str, shape: Shape, config: str, overrides: dict, n_vectors: int, out_dir: str) -> str:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    params = random_params(shape, rng)
    ranges: dict = {}
    for w in random_windows(shape, 64, rng):
        floatmodel.forward(params, shape, w, ranges)
    ranges = {k: (0.9 * lo, 0.9 * hi) for k, (lo, hi) in ranges.items()}
    bits = bits_config(config, shape, **overrides)
    features = [{"name": f"x{f}", "unit": "1", "mean": 0.0, "std": 1.0} for f in range(shape.features)]
    target = {"name": "x0", "unit": "1", "mean": 0.0, "std": 1.0, "feature": 0}
    data = export_model(params, ranges, bits, shape, features, target, 60.0,
                        {"tool": "tools/gen_vectors.py", "kind": "random test model", "seed": str(seed),
                         "configuration": config})
    path = os.path.join(out_dir, f"{name}.safetensors")
    with open(path, "wb") as f:
        f.write(data)
    model = load_model(data)
    bi, si, zi = model.act("input")
    wins = random_windows(shape, n_vectors - 4, rng)
    q = np.stack([Q.quantize(w, si, zi, bi) for w in wins])
    n_in = shape.window * shape.features
    edges = np.stack([np.full(n_in, Q.lo(bi)), np.full(n_in, Q.hi(bi)), np.full(n_in, zi),
                      np.where(np.arange(n_in) % 2 == 0, Q.lo(bi), Q.hi(bi))])
    inputs = np.concatenate([q.reshape(len(q), -1), edges]).astype(np.int64)
    outputs = reference.forward_batch(model, inputs)
    write_vectors(os.path.join(out_dir, f"{name}.vectors.txt"), inputs, outputs)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "models", "random"))
    ap.add_argument("--out-v2", default=os.path.join(root, "models", "random-v2"))
    ap.add_argument("--vectors", type=int, default=64)
    args = ap.parse_args()
    for out, specs in ((args.out, SPECS), (args.out_v2, SPECS_V2)):
        os.makedirs(out, exist_ok=True)
        for name, shape, config, extra in specs:
            path = build(name, shape, config, extra, args.vectors, out)
            print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
