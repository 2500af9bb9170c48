"""The accelerator's parameter image (docs/register-map.md §6), built from a model file.

The same bytes `aiotctl upload-weights` writes to PARAM memory at 0x010000 (the Swift
`ParameterImage.serialize` follows the same section layout). numpy only."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from .modelfile import Model, activation_names

MAGIC = b"AIOTPRM1"
FORMAT_VERSION = 1          # contract v1 models
FORMAT_VERSION_SKIP = 2     # contract v2 models: the skip path's tables and tensors appended (§6)
HEADER_SIZE = 64


def weight_order(layers: int, skip: bool = False) -> list[str]:
    """The `*.weight` tensors in tensor order (§6.2)."""
    out = ["input_proj.weight"]
    for l in range(layers):
        p = f"layers.{l}"
        out += [f"{p}.q.weight", f"{p}.k.weight", f"{p}.v.weight", f"{p}.o.weight",
                f"{p}.norm1.weight", f"{p}.ffn1.weight", f"{p}.ffn2.weight", f"{p}.norm2.weight"]
    return out + ["head.weight"] + (["skip.weight"] if skip else [])


def requant_order(layers: int, skip: bool = False) -> list[str]:
    out = ["input_proj", "pe_add"]
    for l in range(layers):
        out += [f"layers.{l}.{s}" for s in
                ("q", "k", "v", "scores", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2")]
    return out + ["pool", "head"] + (["skip", "output"] if skip else [])


def tensor_order(layers: int, skip: bool = False) -> list[str]:
    out = ["input_proj.weight", "input_proj.bias", "pe"]
    for l in range(layers):
        p = f"layers.{l}"
        for s in ("q", "k", "v", "o"):
            out += [f"{p}.{s}.weight", f"{p}.{s}.bias"]
        out.append(f"{p}.softmax.exp")
        for s in ("norm1", "ffn1", "ffn2", "norm2"):
            out += [f"{p}.{s}.weight", f"{p}.{s}.bias"]
    return out + ["head.weight", "head.bias"] + (["skip.weight", "skip.bias"] if skip else [])


def _encoding(name: str) -> str:
    if name.endswith(".weight"):
        return "<i1"
    if name.endswith(".bias"):
        return "<i4"
    if name == "pe":
        return "<i2"
    if name.endswith(".softmax.exp"):
        return "<u2"
    raise ValueError(f"no image encoding for tensor {name}")


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def serialize(model: Model) -> bytes:
    """Model -> parameter image bytes (§6.1-6.4)."""
    sh = model.shape
    # format 2 = contract v2; its activation order is the model file's (head, skip before output)
    acts = activation_names(sh)
    act_tab = b"".join(struct.pack("<BBh", model.act(a)[0], 0, model.act(a)[2]) for a in acts)
    wts = weight_order(sh.layers, sh.skip)
    w_tab = b"".join(struct.pack("<BBh", model.weight(w)[1], 0, model.weight(w)[2]) for w in wts)
    rqs = requant_order(sh.layers, sh.skip)
    rq_tab = b""
    for r in rqs:
        q = model.rq(r)
        m1, m2 = (q["m1"], q["m2"]) if "m1" in q else (q["m"], 0)
        rq_tab += struct.pack("<HHBBH", m1, m2, q["n"], 0, 0)
    names = tensor_order(sh.layers, sh.skip)
    blobs = []
    for n in names:
        enc = np.dtype(_encoding(n))
        v = np.asarray(model.tensors[n], dtype=np.int64).reshape(-1)
        info = np.iinfo(enc)
        if v.min(initial=0) < info.min or v.max(initial=0) > info.max:
            raise ValueError(f"{n}: values do not fit the image encoding {enc}")
        blobs.append((n, v.size, _pad4(v.astype(enc).tobytes())))
    act_off = HEADER_SIZE
    w_off = act_off + len(act_tab)
    rq_off = w_off + len(w_tab)
    dir_off = rq_off + len(rq_tab)
    data_off = dir_off + 8 * len(names)
    directory, offset = b"", data_off
    for _, count, blob in blobs:
        directory += struct.pack("<II", offset, count)
        offset += len(blob)
    total = offset
    header = MAGIC + struct.pack("<HHI", FORMAT_VERSION_SKIP if sh.skip else FORMAT_VERSION, HEADER_SIZE, total)
    header += struct.pack("<7HH", sh.window, sh.features, sh.d_model, sh.heads, sh.layers, sh.ffn, sh.horizon, 0)
    header += struct.pack("<8I", act_off, len(acts), w_off, len(wts), rq_off, len(rqs), dir_off, len(names))
    assert len(header) == HEADER_SIZE
    image = header + act_tab + w_tab + rq_tab + directory + b"".join(b for _, _, b in blobs)
    assert len(image) == total
    return image


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (§3.3)."""
    return zlib.crc32(data) & 0xFFFFFFFF
