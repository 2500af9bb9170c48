"""The exporter: float parameters + observed activation ranges -> an integer model file
(docs/arithmetic.md §8). It refuses any model that breaks a width or bound of §6."""
from __future__ import annotations

import re

import numpy as np

from . import modelfile as MF
from . import quant as Q
from .modelfile import Shape


class ExportError(ValueError):
    """The float model cannot be expressed in the contract; the message names the tensor."""


def bits_config(name: str, shape: Shape, output_bits: int | None = None, input_bits: int | None = None,
                pe_bits: int | None = None) -> dict[str, int]:
    """Per-tensor bit widths for a named configuration: W<w>A<a>, optionally with an O<o> suffix
    (e.g. W8A8O16) for a wider output."""
    m = re.fullmatch(r"W(\d+)A(\d+)(?:O(\d+))?", name.upper())
    if not m:
        raise ExportError(f"unknown configuration {name!r}; use W<bits>A<bits>[O<bits>] like W4A8")
    wb, ab = int(m.group(1)), int(m.group(2))
    if m.group(3):
        output_bits = output_bits or int(m.group(3))
    bits = {n: ab for n in MF.activation_names(shape)}
    bits.update({n: wb for n in MF.weight_names(shape)})
    if input_bits:
        bits["input"] = input_bits
    if pe_bits:
        bits["pe"] = bits["pe_add"] = pe_bits
    if output_bits:
        bits["output"] = output_bits
    if shape.skip:
        # v2's skip path: a 16-bit activation and 8-bit weights in every configuration (W*F*P
        # weights, a few hundred bytes), and a 16-bit head so the sum is rounded once, on `output`
        bits.update({"skip": 16, "head": 16, "skip.weight": 8})
    return bits


def export_model(params: dict[str, np.ndarray], act_ranges: dict[str, tuple[float, float]], bits: dict[str, int],
                 shape: Shape, features: list[dict], target: dict, sampling_period_s: float,
                 provenance: dict[str, str]) -> bytes:
    """Quantize and serialize. `params` are float64 arrays named as in tools/train (BatchNorm folded
    into norm{1,2}.scale/.shift); `act_ranges` hold the observed float range of every activation of
    §10 except `pe` and `probs`, which the exporter derives."""
    try:
        meta, tensors = _quantize(params, act_ranges, bits, shape)
    except (Q.QuantError, KeyError) as e:
        raise ExportError(str(e)) from None
    meta.update({
        "format": MF.FORMAT, "version": shape.version, "shape": shape.as_meta(),
        "features": [dict(f) for f in features], "target": dict(target),
        "sampling_period_s": float(sampling_period_s),
        "provenance": {str(k): str(v) for k, v in provenance.items()},
    })
    try:
        return MF.serialize(meta, tensors)
    except MF.ModelError as e:
        raise ExportError(f"model breaks the contract: {e}") from None


def _quantize(params, act_ranges, bits, shape: Shape):
    acts: dict[str, dict] = {}
    for name in MF.activation_names(shape):
        b = bits[name]
        if name == "pe":
            pe = Q.positional_encoding(shape.window, shape.d_model)
            s, z = Q.act_qparams(pe.min(), pe.max(), b)
        elif name.endswith(".probs"):
            s, z = 1.0 / ((1 << b) - 1), Q.lo(b)
        else:
            if name not in act_ranges:
                raise ExportError(f"no observed range for activation {name}")
            lo_f, hi_f = act_ranges[name]
            s, z = Q.act_qparams(lo_f, hi_f, b)
        acts[name] = {"bits": b, "scale": float(s), "zero_point": int(z)}

    tensors: dict[str, np.ndarray] = {}
    weights: dict[str, dict] = {}
    requant: dict[str, dict] = {}

    def qweight(tname: str, w: np.ndarray):
        b = bits[tname]
        s, z = Q.act_qparams(float(w.min()), float(w.max()), b)
        weights[tname] = {"bits": b, "scale": float(s), "zero_point": int(z)}
        tensors[tname] = Q.quantize(w, s, z, b)
        return s

    def affine(name: str, x: str, y: str, weight: np.ndarray, bias: np.ndarray):
        """(E1)/(E3): weight, bias at scale s_x * s_W, and M = s_x * s_W / s_y."""
        sw = qweight(f"{name}.weight", np.asarray(weight, dtype=np.float64))
        sx, sy = acts[x]["scale"], acts[y]["scale"]
        lim = (1 << (acts[x]["bits"] + bits[f"{name}.weight"] + 1)) - 1
        b = Q.round_half_away(np.asarray(bias, dtype=np.float64) / (sx * sw))
        tensors[f"{name}.bias"] = np.clip(b, -lim, lim).astype(np.int64)
        m, n = Q.requant_multiplier(sx * sw / sy)
        requant[name] = {"m": m, "n": n}

    for name, x, y, _, _ in MF.linear_layers(shape):
        affine(name, x, y, params[f"{name}.weight"], params[f"{name}.bias"])
    for name, x, y in MF.norm_layers(shape):
        affine(name, x, y, params[f"{name}.scale"], params[f"{name}.shift"])
    pe = Q.positional_encoding(shape.window, shape.d_model)
    tensors["pe"] = Q.quantize(pe, acts["pe"]["scale"], acts["pe"]["zero_point"], acts["pe"]["bits"])
    for name, a, b, y in MF.add_layers(shape):
        sy = acts[y]["scale"]
        m1, m2, n = Q.requant_multiplier_pair(acts[a]["scale"] / sy, acts[b]["scale"] / sy)
        requant[name] = {"m1": m1, "m2": m2, "n": n}
    for l in range(shape.layers):
        p = f"layers.{l}"
        sq, sk, ss = acts[f"{p}.q"]["scale"], acts[f"{p}.k"]["scale"], acts[f"{p}.scores"]["scale"]
        m, n = Q.requant_multiplier(sq * sk / (ss * np.sqrt(shape.dh)))
        requant[f"{p}.scores"] = {"m": m, "n": n}
        sa, sv, sc = acts[f"{p}.probs"]["scale"], acts[f"{p}.v"]["scale"], acts[f"{p}.context"]["scale"]
        m, n = Q.requant_multiplier(sa * sv / sc)
        requant[f"{p}.context"] = {"m": m, "n": n}
        tensors[f"{p}.softmax.exp"] = Q.exp_table(ss, acts[f"{p}.scores"]["bits"])
    last = f"layers.{shape.layers - 1}.norm2"
    m, n = Q.requant_multiplier(acts[last]["scale"] / (shape.window * acts["pool"]["scale"]))
    requant["pool"] = {"m": m, "n": n}
    return {"activations": acts, "weights": weights, "requant": requant}, tensors
