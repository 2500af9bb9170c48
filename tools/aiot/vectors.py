"""Test-vector files (docs/arithmetic.md §11): `aiotvec1 count n_in n_out`, then one vector a line."""
from __future__ import annotations

import numpy as np

MAGIC = "aiotvec1"


def write_vectors(path, inputs: np.ndarray, outputs: np.ndarray) -> None:
    inputs = np.asarray(inputs, dtype=np.int64).reshape(len(inputs), -1)
    outputs = np.asarray(outputs, dtype=np.int64).reshape(len(outputs), -1)
    if len(inputs) != len(outputs):
        raise ValueError("inputs and outputs differ in count")
    lines = [f"{MAGIC} {len(inputs)} {inputs.shape[1]} {outputs.shape[1]}"]
    for i, o in zip(inputs, outputs):
        lines.append(" ".join(map(str, i.tolist())) + "  " + " ".join(map(str, o.tolist())))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_vectors(path) -> tuple[np.ndarray, np.ndarray]:
    with open(path) as f:
        tokens = f.read().split()
    if len(tokens) < 4 or tokens[0] != MAGIC:
        raise ValueError(f"{path}: not an {MAGIC} file")
    count, n_in, n_out = (int(t) for t in tokens[1:4])
    values = np.array([int(t) for t in tokens[4:]], dtype=np.int64)
    if values.size != count * (n_in + n_out):
        raise ValueError(f"{path}: expected {count * (n_in + n_out)} integers, found {values.size}")
    rows = values.reshape(count, n_in + n_out)
    return rows[:, :n_in], rows[:, n_in:]
