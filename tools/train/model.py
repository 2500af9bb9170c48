"""The contract's network (docs/arithmetic.md §5) in float, with fake-quantization points.

Module and parameter names follow the exporter's float parameter names (PyTorch [out, in] layout):
input_proj, layers.{l}.{q,k,v,o,ffn1,ffn2}, layers.{l}.norm{1,2}, head. Each activation of §10 has an
Observer under the same name (dots replaced by '_' in module names).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tools.aiot.quant import positional_encoding
from tools.train.fakequant import (Observer, act_qparams, fake_quant, fake_quant_bias,
                                   fake_quant_weight, lo)

LAYER_ACTS = ("q", "k", "v", "scores", "probs", "context", "o", "res1", "norm1", "ffn1", "ffn2",
              "res2", "norm2")


@dataclass(frozen=True)
class Shape:
    window: int = 24
    features: int = 1
    d_model: int = 16
    heads: int = 1
    layers: int = 1
    horizon: int = 1
    skip: bool = False   # contract v2: a linear path from the window to the output (add_skip)

    @property
    def ffn(self) -> int:
        return 4 * self.d_model


def activation_names(shape: Shape) -> list[str]:
    names = ["input", "input_proj", "pe", "pe_add"]
    for l in range(shape.layers):
        names += [f"layers.{l}.{a}" for a in LAYER_ACTS]
    return names + (["pool", "head", "skip", "output"] if shape.skip else ["pool", "output"])


def weight_names(shape: Shape) -> list[str]:
    names = ["input_proj.weight"]
    for l in range(shape.layers):
        names += [f"layers.{l}.{t}.weight" for t in ("q", "k", "v", "o", "norm1", "ffn1", "ffn2", "norm2")]
    return names + ["head.weight"] + (["skip.weight"] if shape.skip else [])


class Norm(nn.Module):
    """BatchNorm1d over channels of [B, T, C] while pretraining; after fold(), a per-channel affine
    y = scale * x + shift whose scale is fake-quantized like a weight (docs §4 E3)."""

    def __init__(self, d: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(d, eps=1e-5, momentum=0.1)
        self.scale = None
        self.shift = None

    @property
    def folded(self) -> bool:
        return self.scale is not None

    def fold(self) -> None:
        bn = self.bn
        with torch.no_grad():
            sc = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            sh = bn.bias - sc * bn.running_mean
        self.scale = nn.Parameter(sc.clone())
        self.shift = nn.Parameter(sh.clone())
        del self.bn
        self.bn = None

    def forward(self, x, fq=None):
        if not self.folded:
            return self.bn(x.transpose(1, 2)).transpose(1, 2)
        if fq is None:
            return x * self.scale + self.shift
        (sx, bx), bw = fq
        w, sw = fake_quant_weight(self.scale, bw)
        b = fake_quant_bias(self.shift, sx * sw, bx + bw + 2)
        return x * w + b


def qlinear(lin: nn.Linear, x: torch.Tensor, fq=None) -> torch.Tensor:
    if fq is None:
        return lin(x)
    (sx, bx), bw = fq
    w, sw = fake_quant_weight(lin.weight, bw)
    b = fake_quant_bias(lin.bias, sx * sw, bx + bw + 2)
    return nn.functional.linear(x, w, b)


class Layer(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.norm1 = Norm(d)
        self.ffn1 = nn.Linear(d, 4 * d)
        self.ffn2 = nn.Linear(4 * d, d)
        self.norm2 = Norm(d)
        self.heads = heads


class Transformer(nn.Module):
    def __init__(self, shape: Shape, bits: dict[str, int] | None = None):
        super().__init__()
        self.shape = shape
        d = shape.d_model
        self.input_proj = nn.Linear(shape.features, d)
        self.layers = nn.ModuleList([Layer(d, shape.heads) for _ in range(shape.layers)])
        self.head = nn.Linear(d, shape.horizon)
        self.skip = nn.Linear(shape.window * shape.features, shape.horizon) if shape.skip else None
        self.register_buffer("pe", torch.tensor(positional_encoding(shape.window, d), dtype=torch.float32))
        self.bits: dict[str, int] = {}
        self.obs = nn.ModuleDict()
        self.quant = False
        if bits is not None:
            self.set_bits(bits)

    # -- quantization set-up -------------------------------------------------------------------
    def set_bits(self, bits: dict[str, int]) -> None:
        need = activation_names(self.shape) + weight_names(self.shape)
        missing = [n for n in need if n not in bits]
        if missing:
            raise ValueError(f"bits missing for {missing}")
        self.bits = dict(bits)
        obs = {}
        for n in activation_names(self.shape):
            if n == "pe":
                continue
            fixed = None
            if n.endswith(".probs"):
                b = bits[n]
                fixed = (1.0 / ((1 << b) - 1), lo(b))
            obs[n.replace(".", "_")] = Observer(n, bits[n], fixed=fixed)
        self.obs = nn.ModuleDict(obs)

    def set_mode(self, mode: str) -> None:
        """'float' (no observers), 'calib', 'qat', 'frozen'."""
        self.quant = mode in ("qat", "frozen")
        for o in self.obs.values():
            o.mode = {"float": "off", "calib": "calib", "qat": "qat", "frozen": "frozen"}[mode]

    def add_skip(self, weight: np.ndarray, bias: np.ndarray, head_weight: np.ndarray, head_bias: np.ndarray) -> None:
        """Contract v2: adds the linear skip path (window flattened time-major -> P) with the given
        float weights (the ridge solution) and replaces the head by one fitted to the residual, so the
        network starts as ridge + the Transformer's correction. Call before set_bits."""
        import dataclasses
        self.shape = dataclasses.replace(self.shape, skip=True)
        self.skip = nn.Linear(self.shape.window * self.shape.features, self.shape.horizon)
        with torch.no_grad():
            self.skip.weight.copy_(torch.tensor(weight, dtype=torch.float32))
            self.skip.bias.copy_(torch.tensor(bias, dtype=torch.float32))
            self.head.weight.copy_(torch.tensor(head_weight, dtype=torch.float32))
            self.head.bias.copy_(torch.tensor(head_bias, dtype=torch.float32))

    def fold_norms(self) -> None:
        for layer in self.layers:
            layer.norm1.fold()
            layer.norm2.fold()

    def pe_qparams(self) -> tuple[float, int]:
        # from the float64 encoding, as the exporter does (not from the float32 buffer)
        pe = positional_encoding(self.shape.window, self.shape.d_model)
        return act_qparams(float(pe.min()), float(pe.max()), self.bits["pe"])

    def act_ranges(self) -> dict[str, tuple[float, float]]:
        return {o.name: o.range() for o in self.obs.values() if o.fixed is None}

    # -- forward -------------------------------------------------------------------------------
    def _a(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.obs:
            return x
        return self.obs[name.replace(".", "_")](x)

    def _fq(self, in_name: str, weight: str):
        """(input (scale, bits), weight bits) for a fake-quantized linear, or None in float."""
        if not self.quant:
            return None
        o = self.obs[in_name.replace(".", "_")]
        return (o.qparams()[0], o.bits), self.bits[weight]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh = self.shape
        x = self._a("input", x)
        h = self._a("input_proj", qlinear(self.input_proj, x, self._fq("input", "input_proj.weight")))
        pe = self.pe
        if self.quant:
            s, z = self.pe_qparams()
            pe = fake_quant(pe, s, z, self.bits["pe"])
        h = self._a("pe_add", h + pe)
        prev = "pe_add"
        dh = sh.d_model // sh.heads
        for l, layer in enumerate(self.layers):
            p = f"layers.{l}."
            q = self._a(p + "q", qlinear(layer.q, h, self._fq(prev, p + "q.weight")))
            k = self._a(p + "k", qlinear(layer.k, h, self._fq(prev, p + "k.weight")))
            v = self._a(p + "v", qlinear(layer.v, h, self._fq(prev, p + "v.weight")))
            B, T, _ = q.shape
            qh = q.view(B, T, sh.heads, dh).transpose(1, 2)
            kh = k.view(B, T, sh.heads, dh).transpose(1, 2)
            vh = v.view(B, T, sh.heads, dh).transpose(1, 2)
            s = self._a(p + "scores", qh @ kh.transpose(-1, -2) / math.sqrt(dh))
            a = self._a(p + "probs", torch.softmax(s, dim=-1))
            c = self._a(p + "context", (a @ vh).transpose(1, 2).reshape(B, T, sh.d_model))
            o = self._a(p + "o", qlinear(layer.o, c, self._fq(p + "context", p + "o.weight")))
            r1 = self._a(p + "res1", h + o)
            n1 = self._a(p + "norm1", layer.norm1(r1, self._fq(p + "res1", p + "norm1.weight")))
            f1 = self._a(p + "ffn1", torch.relu(qlinear(layer.ffn1, n1, self._fq(p + "norm1", p + "ffn1.weight"))))
            f2 = self._a(p + "ffn2", qlinear(layer.ffn2, f1, self._fq(p + "ffn1", p + "ffn2.weight")))
            r2 = self._a(p + "res2", n1 + f2)
            h = self._a(p + "norm2", layer.norm2(r2, self._fq(p + "res2", p + "norm2.weight")))
            prev = p + "norm2"
        pool = self._a("pool", h.mean(dim=1))
        head = qlinear(self.head, pool, self._fq("pool", "head.weight"))
        if self.skip is None:
            return self._a("output", head)
        # v2 (docs §5 steps 15-17): output = Add(head, skip(window flattened time-major))
        skip = self._a("skip", qlinear(self.skip, x.reshape(x.shape[0], -1), self._fq("input", "skip.weight")))
        return self._a("output", self._a("head", head) + skip)

    @torch.no_grad()
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The pool activation [B, d] of a model without a skip path (the head's input), for fitting
        the head on the ridge residual."""
        assert self.skip is None, "pooled() is for the float model before add_skip"
        head, self.head = self.head, nn.Identity()
        try:
            return self.forward(x)
        finally:
            self.head = head

    # -- export --------------------------------------------------------------------------------
    def float_params(self) -> dict[str, np.ndarray]:
        """Float parameters under the exporter's names (norms must be folded)."""
        out = {}
        for name, t in self.named_parameters():
            if not name.startswith("obs."):  # trained activation ranges go to the exporter as ranges
                out[name] = t.detach().double().numpy().copy()
        return out

    def param_count(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("obs."))
