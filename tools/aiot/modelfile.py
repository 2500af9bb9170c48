"""The model file (docs/arithmetic.md §10): safetensors with our metadata, plus its validation.

Written by hand (not with the safetensors package) so the bytes are deterministic; tests check that
the `safetensors` package reads them."""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np

from . import quant as Q

FORMAT = "aiot-int-transformer"
VERSION = 1          # the version a model without a skip path is written as
VERSIONS = (1, 2)    # 2 adds the linear skip path (docs/arithmetic.md §5 step 15-17)
_DTYPES = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}
_DTYPE_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items()}
MAX_HEADER = 16 << 20

WEIGHT_BITS = (4, 6, 8)
ACT_BITS = (4, 6, 8)
WIDE_ACTS = ("input", "pe", "pe_add", "output", "head", "skip")


class ModelError(ValueError):
    """A model file that breaks the contract; the message names the field."""


@dataclass(frozen=True)
class Shape:
    window: int
    features: int
    d_model: int
    heads: int
    layers: int
    horizon: int
    skip: bool = False   # contract v2: output = Add(head, skip(input)); not part of the metadata shape

    @property
    def version(self) -> int:
        return 2 if self.skip else 1

    @property
    def ffn(self) -> int:
        return 4 * self.d_model

    @property
    def dh(self) -> int:
        return self.d_model // self.heads

    def as_meta(self) -> dict:
        return {"window": self.window, "features": self.features, "d_model": self.d_model,
                "heads": self.heads, "layers": self.layers, "ffn": self.ffn, "horizon": self.horizon}


def activation_names(shape: Shape) -> list[str]:
    names = ["input", "input_proj", "pe", "pe_add"]
    for l in range(shape.layers):
        names += [f"layers.{l}.{s}" for s in
                  ("q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2", "res2", "norm2")]
    return names + (["pool", "head", "skip", "output"] if shape.skip else ["pool", "output"])


def linear_layers(shape: Shape) -> list[tuple[str, str, str, int, int]]:
    """(name, input activation, output activation, out features, in features) of every (E1)."""
    d, out = shape.d_model, []
    out.append(("input_proj", "input", "input_proj", d, shape.features))
    for l in range(shape.layers):
        x = "pe_add" if l == 0 else f"layers.{l - 1}.norm2"
        p = f"layers.{l}"
        out += [(f"{p}.q", x, f"{p}.q", d, d), (f"{p}.k", x, f"{p}.k", d, d), (f"{p}.v", x, f"{p}.v", d, d),
                (f"{p}.o", f"{p}.context", f"{p}.o", d, d),
                (f"{p}.ffn1", f"{p}.norm1", f"{p}.ffn1", shape.ffn, d),
                (f"{p}.ffn2", f"{p}.ffn1", f"{p}.ffn2", d, shape.ffn)]
    if shape.skip:
        # v2: the head writes its own activation; the skip path reads the flattened window
        out.append(("head", "pool", "head", shape.horizon, d))
        out.append(("skip", "input", "skip", shape.horizon, shape.window * shape.features))
    else:
        out.append(("head", "pool", "output", shape.horizon, d))
    return out


def norm_layers(shape: Shape) -> list[tuple[str, str, str]]:
    """(name, input activation, output activation) of every (E3)."""
    out = []
    for l in range(shape.layers):
        p = f"layers.{l}"
        out += [(f"{p}.norm1", f"{p}.res1", f"{p}.norm1"), (f"{p}.norm2", f"{p}.res2", f"{p}.norm2")]
    return out


def add_layers(shape: Shape) -> list[tuple[str, str, str, str]]:
    """(name, operand 1, operand 2, output) of every (E2)."""
    out = [("pe_add", "input_proj", "pe", "pe_add")]
    for l in range(shape.layers):
        x = "pe_add" if l == 0 else f"layers.{l - 1}.norm2"
        p = f"layers.{l}"
        out += [(f"{p}.res1", x, f"{p}.o", f"{p}.res1"), (f"{p}.res2", f"{p}.norm1", f"{p}.ffn2", f"{p}.res2")]
    if shape.skip:
        out.append(("output", "head", "skip", "output"))
    return out


def weight_names(shape: Shape) -> list[str]:
    return [f"{n}.weight" for n, *_ in linear_layers(shape)] + [f"{n}.weight" for n, *_ in norm_layers(shape)]


def requant_names(shape: Shape) -> list[str]:
    names = [n for n, *_ in linear_layers(shape)] + [n for n, *_ in norm_layers(shape)]
    names += [n for n, *_ in add_layers(shape)]
    for l in range(shape.layers):
        names += [f"layers.{l}.scores", f"layers.{l}.context"]
    return names + ["pool"]


def tensor_shapes(shape: Shape, meta: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for name, _, _, o, i in linear_layers(shape):
        out[f"{name}.weight"] = ((o, i), "I8")
        out[f"{name}.bias"] = ((o,), "I32")
    for name, _, _ in norm_layers(shape):
        out[f"{name}.weight"] = ((shape.d_model,), "I8")
        out[f"{name}.bias"] = ((shape.d_model,), "I32")
    out["pe"] = ((shape.window, shape.d_model), "I32")
    for l in range(shape.layers):
        bits = meta["activations"][f"layers.{l}.scores"]["bits"]
        out[f"layers.{l}.softmax.exp"] = ((1 << bits,), "I32")
    return out


@dataclass
class Model:
    meta: dict
    tensors: dict[str, np.ndarray]          # int64 copies
    sha256: str = ""
    shape: Shape = field(init=False)

    def __post_init__(self):
        s = self.meta["shape"]
        self.shape = Shape(s["window"], s["features"], s["d_model"], s["heads"], s["layers"], s["horizon"],
                           skip=self.meta.get("version") == 2)

    def act(self, name: str) -> tuple[int, float, int]:
        a = self.meta["activations"][name]
        return a["bits"], a["scale"], a["zero_point"]

    def weight(self, name: str) -> tuple[np.ndarray, int, int]:
        w = self.meta["weights"][name]
        return self.tensors[name], w["bits"], w["zero_point"]

    def rq(self, name: str) -> dict:
        return self.meta["requant"][name]


def _int(d: dict, key: str, where: str) -> int:
    if key not in d:
        raise ModelError(f"{where}.{key} is missing")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelError(f"{where}.{key} must be an integer, got {v!r}")
    return v


def _num(d: dict, key: str, where: str) -> float:
    if key not in d:
        raise ModelError(f"{where}.{key} is missing")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise ModelError(f"{where}.{key} must be a finite number, got {v!r}")
    return float(v)


def validate(meta: dict, tensors: dict[str, np.ndarray]) -> None:
    """Check every width and bound of docs/arithmetic.md §2, §3, §6. Raises ModelError naming the field."""
    if meta.get("format") != FORMAT:
        raise ModelError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("version")
    if isinstance(version, bool) or version not in VERSIONS:
        raise ModelError(f"version is {version!r}, this reader knows {', '.join(map(str, VERSIONS))}")
    s = meta.get("shape")
    if not isinstance(s, dict):
        raise ModelError("shape is missing")
    W, F, d, H, N, P = (_int(s, k, "shape") for k in ("window", "features", "d_model", "heads", "layers", "horizon"))
    limits = {"window": (W, 1, 256), "features": (F, 1, 16), "d_model": (d, 2, 256), "heads": (H, 1, 8),
              "layers": (N, 1, 8), "horizon": (P, 1, 64)}
    for k, (v, a, b) in limits.items():
        if not a <= v <= b:
            raise ModelError(f"shape.{k} = {v} is outside {a}...{b}")
    if d % H:
        raise ModelError(f"shape.d_model = {d} is not a multiple of shape.heads = {H}")
    if _int(s, "ffn", "shape") != 4 * d:
        raise ModelError(f"shape.ffn = {s['ffn']} must be 4 * d_model = {4 * d}")
    shape = Shape(W, F, d, H, N, P, skip=version == 2)

    acts = meta.get("activations")
    if not isinstance(acts, dict):
        raise ModelError("activations is missing")
    for name in activation_names(shape):
        if name not in acts:
            raise ModelError(f"activations.{name} is missing")
        a, where = acts[name], f"activations.{name}"
        b = _int(a, "bits", where)
        allowed = range(4, 17) if name in WIDE_ACTS else ACT_BITS
        if b not in allowed:
            raise ModelError(f"{where}.bits = {b} is not allowed (allowed: {list(allowed)})")
        z = _int(a, "zero_point", where)
        if not Q.lo(b) <= z <= Q.hi(b):
            raise ModelError(f"{where}.zero_point = {z} is outside {Q.lo(b)}...{Q.hi(b)}")
        sc = _num(a, "scale", where)
        if sc <= 0:
            raise ModelError(f"{where}.scale = {sc} must be positive")
        if name.endswith(".probs"):
            if z != Q.lo(b) or abs(sc * ((1 << b) - 1) - 1.0) > 1e-12:
                raise ModelError(f"{where} must have zero_point {Q.lo(b)} and scale 1/{(1 << b) - 1}")

    weights = meta.get("weights")
    if not isinstance(weights, dict):
        raise ModelError("weights is missing")
    for name in weight_names(shape):
        if name not in weights:
            raise ModelError(f"weights.{name} is missing")
        w, where = weights[name], f"weights.{name}"
        b = _int(w, "bits", where)
        if b not in WEIGHT_BITS:
            raise ModelError(f"{where}.bits = {b} is not allowed (allowed: {list(WEIGHT_BITS)})")
        z = _int(w, "zero_point", where)
        if not Q.lo(b) <= z <= Q.hi(b):
            raise ModelError(f"{where}.zero_point = {z} is outside {Q.lo(b)}...{Q.hi(b)}")
        if _num(w, "scale", where) <= 0:
            raise ModelError(f"{where}.scale must be positive")

    rq = meta.get("requant")
    if not isinstance(rq, dict):
        raise ModelError("requant is missing")
    adds = {n for n, *_ in add_layers(shape)}
    for name in requant_names(shape):
        if name not in rq:
            raise ModelError(f"requant.{name} is missing")
        r, where = rq[name], f"requant.{name}"
        for key in (("m1", "m2") if name in adds else ("m",)):
            m = _int(r, key, where)
            if not 0 <= m <= Q.M_MAX:
                raise ModelError(f"{where}.{key} = {m} is outside 0...{Q.M_MAX}")
        n = _int(r, "n", where)
        if not 0 <= n <= Q.N_MAX:
            raise ModelError(f"{where}.n = {n} is outside 0...{Q.N_MAX}")

    for key in ("features", "target"):
        if key not in meta:
            raise ModelError(f"{key} is missing")
    if not isinstance(meta["features"], list) or len(meta["features"]) != F:
        raise ModelError(f"features must list {F} entries")
    for i, f in enumerate(meta["features"] + [meta["target"]]):
        where = f"features[{i}]" if i < F else "target"
        if not isinstance(f.get("name"), str) or not isinstance(f.get("unit"), str):
            raise ModelError(f"{where}.name and .unit must be strings")
        _num(f, "mean", where)
        if _num(f, "std", where) <= 0:
            raise ModelError(f"{where}.std must be positive")
    ti = _int(meta["target"], "feature", "target")
    if not 0 <= ti < F:
        raise ModelError(f"target.feature = {ti} is outside 0...{F - 1}")
    if _num(meta, "sampling_period_s", "model") <= 0:
        raise ModelError("sampling_period_s must be positive")

    # Tensors: presence, shapes, value ranges.
    expected = tensor_shapes(shape, meta)
    for name, (shp, _) in expected.items():
        if name not in tensors:
            raise ModelError(f"tensor {name} is missing")
        if tuple(tensors[name].shape) != shp:
            raise ModelError(f"tensor {name} has shape {list(tensors[name].shape)}, expected {list(shp)}")
    for name in tensors:
        if name not in expected:
            raise ModelError(f"tensor {name} is not part of this model")
    for name in weight_names(shape):
        b = weights[name]["bits"]
        t = tensors[name]
        if t.min() < Q.lo(b) or t.max() > Q.hi(b):
            raise ModelError(f"tensor {name} holds values outside {b}-bit range")
    for name, x, _, _, _ in linear_layers(shape):
        bx, bw = acts[x]["bits"], weights[f"{name}.weight"]["bits"]
        _check_bias(tensors[f"{name}.bias"], bx, bw, name)
    for name, x, _ in norm_layers(shape):
        _check_bias(tensors[f"{name}.bias"], acts[x]["bits"], weights[f"{name}.weight"]["bits"], name)
    bpe = acts["pe"]["bits"]
    if tensors["pe"].min() < Q.lo(bpe) or tensors["pe"].max() > Q.hi(bpe):
        raise ModelError(f"tensor pe holds values outside {bpe}-bit range")
    for l in range(N):
        e = tensors[f"layers.{l}.softmax.exp"]
        if e[0] != Q.EXP_ONE or e.min() < 0 or np.any(np.diff(e) > 0):
            raise ModelError(f"tensor layers.{l}.softmax.exp must start at {Q.EXP_ONE}, be non-increasing and >= 0")

    # Accumulator bounds (§4, §6).
    def amax(b):
        return (1 << b) - 1
    for name, x, _, _, k in linear_layers(shape):
        bx, bw = acts[x]["bits"], weights[f"{name}.weight"]["bits"]
        bound = k * amax(bx) * amax(bw) + (1 << (bx + bw + 1)) - 1
        if bound > Q.ACC_MAX:
            raise ModelError(f"{name}: accumulator bound {bound} exceeds 2^31 - 1; use fewer bits or a smaller shape")
    for l in range(N):
        p = f"layers.{l}"
        bound = shape.dh * amax(acts[f"{p}.q"]["bits"]) * amax(acts[f"{p}.k"]["bits"])
        if bound > Q.ACC_MAX:
            raise ModelError(f"{p}.scores: accumulator bound {bound} exceeds 2^31 - 1")
        bound = W * amax(acts[f"{p}.probs"]["bits"]) * amax(acts[f"{p}.v"]["bits"])
        if bound > Q.ACC_MAX:
            raise ModelError(f"{p}.context: accumulator bound {bound} exceeds 2^31 - 1")
    last = f"layers.{N - 1}.norm2"
    if W * amax(acts[last]["bits"]) > Q.ACC_MAX:
        raise ModelError("pool: accumulator bound exceeds 2^31 - 1")


def _check_bias(b: np.ndarray, bx: int, bw: int, name: str) -> None:
    lim = (1 << (bx + bw + 1)) - 1
    if b.min() < -lim or b.max() > lim:
        raise ModelError(f"tensor {name}.bias holds values outside +-{lim} ({bx}+{bw}+2-bit symmetric)")


def serialize(meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """Deterministic safetensors bytes; tensors in name order, header padded to 8 bytes."""
    validate(meta, tensors)
    shapes = tensor_shapes(Model(meta, {}).shape, meta)
    header: dict = {"__metadata__": {"aiot": json.dumps(meta, sort_keys=True, separators=(",", ":"))}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype = shapes[name][1]
        raw = np.ascontiguousarray(tensors[name]).astype(np.dtype(_DTYPES[dtype]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def parse(data: bytes) -> Model:
    """Read and validate a model file."""
    if len(data) < 8:
        raise ModelError("file is shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > MAX_HEADER or 8 + hlen > len(data):
        raise ModelError(f"header length {hlen} does not fit the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"header is not valid JSON: {e}") from None
    if not isinstance(header, dict) or "__metadata__" not in header or "aiot" not in header["__metadata__"]:
        raise ModelError("header has no __metadata__.aiot")
    try:
        meta = json.loads(header.pop("__metadata__")["aiot"])
    except (TypeError, json.JSONDecodeError) as e:
        raise ModelError(f"__metadata__.aiot is not valid JSON: {e}") from None
    body = data[8 + hlen:]
    tensors, spans = {}, []
    for name, info in header.items():
        dt = info.get("dtype")
        if dt not in _DTYPES:
            raise ModelError(f"tensor {name} has unsupported dtype {dt!r}")
        shp = info.get("shape")
        begin, end = info.get("data_offsets", [None, None])
        n = int(np.prod(shp)) if shp else 1
        if end - begin != n * np.dtype(_DTYPES[dt]).itemsize:
            raise ModelError(f"tensor {name}: data_offsets span {end - begin} bytes, shape {shp} needs "
                             f"{n * np.dtype(_DTYPES[dt]).itemsize}")
        if end > len(body):
            raise ModelError(f"tensor {name} ends at {end}, past the end of the data ({len(body)} bytes)")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(body[begin:end], dtype=np.dtype(_DTYPES[dt]).newbyteorder("<")) \
            .reshape(shp).astype(np.int64)
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ModelError(f"tensor {name} starts at {begin}, expected {pos} (hole or overlap)")
        pos = end
    if pos != len(body):
        raise ModelError(f"{len(body) - pos} trailing bytes after the last tensor")
    validate(meta, tensors)
    return Model(meta, tensors, hashlib.sha256(data).hexdigest())


def load_model(source) -> Model:
    """Load from a path or from bytes."""
    if isinstance(source, (bytes, bytearray)):
        return parse(bytes(source))
    with open(source, "rb") as f:
        return parse(f.read())
