"""Fake quantization in torch that reproduces what tools/aiot/export.py writes.

Scales and zero points come from tools/aiot/quant.act_qparams (docs/arithmetic.md §8) applied to the
same ranges the exporter is given: weights use their own min/max, activations the observer's EMA
range, the positional encoding its own min/max, the softmax output the fixed grid 1/(2^b - 1) with
zero point lo(b). Rounding is half away from zero, as on the integer path. Gradients are
straight-through inside the representable range and zero outside it.
"""
from __future__ import annotations

import torch
from torch import nn

from tools.aiot.quant import act_qparams


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def lo(bits: int) -> int:
    return -(1 << (bits - 1))


def hi(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def fake_quant(x: torch.Tensor, scale: float, zp: int, bits: int) -> torch.Tensor:
    """s * (SAT(z + round(x / s)) - z), straight-through within [s(lo-z), s(hi-z)]."""
    rlo = (lo(bits) - zp) * scale
    rhi = (hi(bits) - zp) * scale
    xc = torch.clamp(x, rlo, rhi)
    q = torch.clamp(zp + round_half_away(x.detach() / scale), lo(bits), hi(bits))
    return xc + ((q - zp) * scale - xc).detach()


def weight_qparams(w: torch.Tensor, bits: int) -> tuple[float, int]:
    wd = w.detach()
    return act_qparams(float(wd.min()), float(wd.max()), bits)


def fake_quant_weight(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, float]:
    s, z = weight_qparams(w, bits)
    return fake_quant(w, s, z, bits), s


def fake_quant_bias(b: torch.Tensor, scale: float, bits: int) -> torch.Tensor:
    """Symmetric, |B| <= 2^(bits-1) - 1 with bits = b_x + b_W + 2, scale = s_x * s_W."""
    lim = float((1 << (bits - 1)) - 1)
    bc = torch.clamp(b, -lim * scale, lim * scale)
    q = torch.clamp(round_half_away(b.detach() / scale), -lim, lim)
    return bc + (q * scale - bc).detach()


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (round_half_away(x) - x).detach()


def learned_range_fake_quant(x: torch.Tensor, lo_p: torch.Tensor, hi_p: torch.Tensor, bits: int) -> torch.Tensor:
    """Fake quantization on the exact exporter grid of [lo_p, hi_p] in the forward pass, with LSQ-style
    gradients for the range ends (and straight-through for x) from a differentiable surrogate of the
    same grid: the trained value is still exactly what the exporter writes."""
    s, z = act_qparams(float(lo_p.detach()), float(hi_p.detach()), bits)
    exact = fake_quant(x.detach(), s, z, bits)
    a = torch.clamp(lo_p, max=0.0)
    b = torch.clamp(hi_p, min=0.0)
    st = (b - a) / ((1 << bits) - 1)
    zt = _round_ste(lo(bits) - a / st)
    qt = torch.clamp(_round_ste(x / st) + zt, lo(bits), hi(bits))
    surrogate = (qt - zt) * st
    return exact + (surrogate - surrogate.detach())


class Observer(nn.Module):
    """Range of one activation tensor: min/max of a calibration pass, then an EMA of batch min/max
    (or, after learn_range(), a range trained by gradient descent like LSQ's step size).

    mode 'off': float, no observation; 'calib': float, EMA observation (first batch initialises);
    'qat': EMA observation in training, fake quantization with the current range;
    'frozen': fake quantization with the stored range, no update.
    """

    def __init__(self, name: str, bits: int, momentum: float = 0.01, fixed: tuple[float, int] | None = None):
        super().__init__()
        self.name = name
        self.bits = bits
        self.momentum = momentum
        self.fixed = fixed  # (scale, zero_point) for grids that are not observed (softmax output)
        self.register_buffer("lo_", torch.zeros((), dtype=torch.float64))
        self.register_buffer("hi_", torch.zeros((), dtype=torch.float64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))
        self.mode = "off"
        self.lo_p = None
        self.hi_p = None
        # fraction of the observed span added on each side: room for values beyond the training
        # range (a series that drifts above its training maximum would otherwise saturate)
        self.margin = 0.0

    @property
    def learned(self) -> bool:
        return self.lo_p is not None

    def learn_range(self) -> None:
        """From now on the range is a pair of trainable parameters, starting at the calibrated one."""
        if self.fixed is not None:
            return
        self.lo_p = nn.Parameter(self.lo_.detach().clone().float())
        self.hi_p = nn.Parameter(self.hi_.detach().clone().float())

    def range(self) -> tuple[float, float]:
        if self.learned:
            return float(self.lo_p.detach()), float(self.hi_p.detach())
        lo_, hi_ = float(self.lo_), float(self.hi_)
        if self.margin:
            pad = self.margin * (hi_ - lo_)
            # a range that starts at 0 (after a ReLU) keeps its zero point at lo(b)
            lo_, hi_ = (lo_ - pad if lo_ < 0 else lo_), hi_ + pad
        return lo_, hi_

    def qparams(self) -> tuple[float, int]:
        if self.fixed is not None:
            return self.fixed
        return act_qparams(*self.range(), self.bits)

    def _observe(self, x: torch.Tensor) -> None:
        a = float(x.detach().min())
        b = float(x.detach().max())
        if not bool(self.seen):
            self.lo_.fill_(a)
            self.hi_.fill_(b)
            self.seen.fill_(True)
        else:
            m = self.momentum
            self.lo_.mul_(1 - m).add_(m * a)
            self.hi_.mul_(1 - m).add_(m * b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode == "off":
            return x
        if self.fixed is None and (mode == "calib" or (mode == "qat" and self.training and not self.learned)):
            self._observe(x)
        if mode == "calib":
            return x
        if self.learned and mode == "qat" and self.training:
            return learned_range_fake_quant(x, self.lo_p, self.hi_p, self.bits)
        s, z = self.qparams()
        return fake_quant(x, s, z, self.bits)
