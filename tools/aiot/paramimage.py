"""The accelerator's parameter image (docs/register-map.md §6), byte-identical to the Swift
serializer `ParameterImage.serialize` in Sources/AIOTBoard/ParameterImage.swift.

    python3 -m aiot.paramimage MODEL.safetensors OUT.bin     # writes the image, prints its CRC-32
"""
from __future__ import annotations

import struct
import sys
import zlib

from .modelfile import load_model

MAGIC = b"AIOTPRM1"
VERSION = 1
HEADER = 64
LAYER_ACTS = ("q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2")
LAYER_REQS = ("q", "k", "v", "scores", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2")


def activation_order(layers: int) -> list[str]:
    return ["input", "input_proj", "pe", "pe_add"] + [f"layers.{l}.{s}" for l in range(layers) for s in LAYER_ACTS] \
        + ["pool", "output"]


def requant_order(layers: int) -> list[str]:
    return ["input_proj", "pe_add"] + [f"layers.{l}.{s}" for l in range(layers) for s in LAYER_REQS] + ["pool", "head"]


def tensor_order(layers: int) -> list[str]:
    names = ["input_proj.weight", "input_proj.bias", "pe"]
    for l in range(layers):
        p = f"layers.{l}."
        for s in ("q", "k", "v", "o"):
            names += [p + s + ".weight", p + s + ".bias"]
        names.append(p + "softmax.exp")
        for s in ("norm1", "ffn1", "ffn2", "norm2"):
            names += [p + s + ".weight", p + s + ".bias"]
    return names + ["head.weight", "head.bias"]


def element_format(name: str) -> str:
    if name.endswith(".weight"):
        return "b"
    if name.endswith(".bias"):
        return "i"
    return "h" if name == "pe" else "H"


def align4(x: int) -> int:
    return (x + 3) & ~3


def serialize(model) -> bytes:
    """The image of a loaded model (aiot.modelfile.Model)."""
    s, meta, t = model.shape, model.meta, model.tensors
    acts = activation_order(s.layers)
    tensors = tensor_order(s.layers)
    weights = [n for n in tensors if n.endswith(".weight")]
    reqs = requant_order(s.layers)
    act_at = HEADER
    w_at = act_at + 4 * len(acts)
    r_at = w_at + 4 * len(weights)
    dir_at = r_at + 8 * len(reqs)
    o = dir_at + 8 * len(tensors)
    placed = []
    for n in tensors:
        o = align4(o)
        count = int(t[n].size)
        placed.append((n, o, count))
        o += count * struct.calcsize(element_format(n))
    total = align4(o)
    out = bytearray(total)
    struct.pack_into("<8sHHI7HH", out, 0, MAGIC, VERSION, HEADER, total, s.window, s.features, s.d_model,
                     s.heads, s.layers, s.ffn, s.horizon, 0)
    struct.pack_into("<8I", out, 32, act_at, len(acts), w_at, len(weights), r_at, len(reqs), dir_at, len(tensors))
    for k, n in enumerate(acts):
        a = meta["activations"][n]
        struct.pack_into("<BBh", out, act_at + 4 * k, a["bits"], 0, a["zero_point"])
    for k, n in enumerate(weights):
        w = meta["weights"][n]
        struct.pack_into("<BBh", out, w_at + 4 * k, w["bits"], 0, w["zero_point"])
    for k, n in enumerate(reqs):
        r = meta["requant"][n]
        m1, m2 = (r["m1"], r["m2"]) if "m1" in r else (r["m"], 0)
        struct.pack_into("<HHBBH", out, r_at + 8 * k, m1, m2, r["n"], 0, 0)
    for k, (n, off, count) in enumerate(placed):
        struct.pack_into("<II", out, dir_at + 8 * k, off, count)
        fmt = "<%d%s" % (count, element_format(n))
        struct.pack_into(fmt, out, off, *[int(v) for v in t[n].reshape(-1)])
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    image = serialize(load_model(argv[1]))
    with open(argv[2], "wb") as f:
        f.write(image)
    print(f"{len(image)} bytes, crc32 0x{zlib.crc32(image):08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
